/*
 * b64.h - strict base64 for key and signature files (private to format/).
 */
#ifndef CMIG_FORMAT_B64_H
#define CMIG_FORMAT_B64_H

#include <stddef.h>
#include <stdint.h>

/* Decodes padded standard base64 of exactly binlen bytes. Only the
 * canonical spelling is accepted: one text, one value. Returns 0 or -1. */
int cmig_b64_exact(uint8_t *bin, size_t binlen, const char *b64, size_t b64len);

#endif
