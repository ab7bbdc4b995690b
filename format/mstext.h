/*
 * mstext.h - the text grammar of minisign's key and signature files: lines
 * and strict base64 (private to format/).
 */
#ifndef CMIG_FORMAT_MSTEXT_H
#define CMIG_FORMAT_MSTEXT_H

#include <stddef.h>
#include <stdint.h>

/* Decodes padded standard base64 of exactly binlen bytes. Only the
 * canonical spelling is accepted: one text, one value. Returns 0 or -1. */
int cmig_b64_exact(uint8_t *bin, size_t binlen, const char *b64, size_t b64len);

/* Takes the next line of text[*pos..len) into line and line_len (without
 * its "\n" or "\r\n") and moves *pos past it. Returns NULL, or why the
 * line is refused (NUL byte, lone carriage return, longer than cap). The
 * caller checks *pos < len first. */
const char *cmig_mstext_line(const char *text, size_t len, size_t *pos, size_t cap,
                             const char **line, size_t *line_len);

#endif
