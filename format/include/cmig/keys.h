/*
 * cmig/keys.h - minisign key files: public keys and secret keys.
 *
 * cmig's keys are minisign's keys, byte for byte, so that stock minisign
 * verifies cmig bundles and cmig uses keys that `minisign -G` wrote.
 *
 *   public key file:  "untrusted comment: ...\n" + base64("Ed" || keyid[8] || pk[32]) + "\n"
 *   secret key file:  "untrusted comment: ...\n" + base64("Ed" || kdf[2] || "B2" ||
 *                     salt[32] || opslimit[8 LE] || memlimit[8 LE] ||
 *                     (keyid[8] || sk[64] || checksum[32]) XOR scrypt-stream) + "\n"
 *   kdf is "Sc" (scrypt, encrypted) or "\0\0" (not encrypted).
 *
 * Secret material only ever lives in sodium_malloc memory and is wiped when
 * freed. Nothing here prints.
 */
#ifndef CMIG_KEYS_H
#define CMIG_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "cmig/err.h"

#define CMIG_KEYID_BYTES 8
#define CMIG_PK_BYTES 32
#define CMIG_KEY_FILE_MAX 4096 /* cap on a key file's size */

struct cmig_pubkey {
    uint8_t id[CMIG_KEYID_BYTES];
    uint8_t pk[CMIG_PK_BYTES];
};

/* Several trusted keys at once (rotation). */
struct cmig_keyring {
    size_t n;
    struct cmig_pubkey *keys; /* malloc'd array */
};

/* minisign's spelling of a key id: 16 upper-case hex digits of the id read
 * as a little-endian 64-bit number (what `minisign -V` prints). */
void cmig_keyid_hex(const uint8_t id[CMIG_KEYID_BYTES], char out[17]);

/* Parses a public key from the text of a .pub file (comment line + base64
 * line) or from the bare base64 string alone (as `minisign -P` takes it).
 * what names the source in messages (a path, or "key string"). */
int cmig_pubkey_parse(struct cmig_pubkey *out, const char *text, size_t len, const char *what,
                      struct cmig_err *err);

/* Reads and parses a .pub file (at most CMIG_KEY_FILE_MAX bytes). */
int cmig_pubkey_load(struct cmig_pubkey *out, const char *path, struct cmig_err *err);

/* Writes the .pub file text ("untrusted comment: minisign public key
 * <ID>\n<base64>\n") into buf; returns the length, or 0 when cap is too
 * small. */
size_t cmig_pubkey_format(const struct cmig_pubkey *k, char *buf, size_t cap);

/* Adds a copy of k to the ring (duplicates by key id are ignored). */
int cmig_keyring_add(struct cmig_keyring *ring, const struct cmig_pubkey *k, struct cmig_err *err);

/* Returns the key with this id, or NULL. */
const struct cmig_pubkey *cmig_keyring_find(const struct cmig_keyring *ring,
                                            const uint8_t id[CMIG_KEYID_BYTES]);
void cmig_keyring_free(struct cmig_keyring *ring);

/* Adds trusted keys from one spec: a directory (every *.pub file in it), a
 * .pub file, or a bare base64 key string. */
int cmig_keyring_add_spec(struct cmig_keyring *ring, const char *spec, struct cmig_err *err);

/* Adds keys from a comma-separated list of specs (CMIG_TRUSTED_KEYS). */
int cmig_keyring_add_list(struct cmig_keyring *ring, const char *list, struct cmig_err *err);

/* A secret key, decrypted, in sodium_malloc'd memory. Opaque. */
struct cmig_seckey;

/* Generates a new key pair (random key id, like minisign). */
int cmig_seckey_generate(struct cmig_seckey **out, struct cmig_err *err);

/* Whether the secret key file text is scrypt-encrypted (needs a password).
 * Returns 1 or 0, or -1 when the text is not a minisign secret key. */
int cmig_seckey_text_encrypted(const char *text, size_t len);

/* Parses secret key file text. password may be NULL (or "") for an
 * unencrypted key; a wrong password gives CMIG_E_KEY "wrong password for
 * secret key ...". The checksum is verified, except that the all-zero
 * checksum `minisign -G -W` writes for unencrypted keys is accepted. The
 * scrypt limits stored in the file are capped (a hostile key file cannot
 * ask for unbounded memory). what names the source in messages. */
int cmig_seckey_parse(struct cmig_seckey **out, const char *text, size_t len, const char *password,
                      const char *what, struct cmig_err *err);

/* Reads a secret key file's text into sodium_malloc'd memory: opened with
 * O_NOFOLLOW, at most CMIG_KEY_FILE_MAX bytes. Free with cmig_secret_free. */
int cmig_secret_read_file(char **text, size_t *len, const char *path, struct cmig_err *err);

/* Copies len bytes into sodium_malloc'd, NUL-terminated memory. */
char *cmig_secret_dup(const char *s, size_t len);
/* Wipes and frees memory from cmig_secret_read_file / cmig_secret_dup. */
void cmig_secret_free(char *p);

/* Formats the secret key file text (sodium_malloc'd, NUL-terminated, free
 * with cmig_secret_free). With a non-empty password the key is encrypted
 * with scrypt using minisign's own parameters; with NULL or "" it is
 * written unencrypted (kdf "\0\0") with a real checksum. */
int cmig_seckey_format(const struct cmig_seckey *k, const char *password, char **text, size_t *len,
                       struct cmig_err *err);

/* The public half of a secret key. */
void cmig_seckey_pubkey(const struct cmig_seckey *k, struct cmig_pubkey *out);

/* Wipes and frees; NULL is fine. */
void cmig_seckey_free(struct cmig_seckey *k);

/* Signs msg (Ed25519, detached): sig receives 64 bytes. */
int cmig_seckey_sign(const struct cmig_seckey *k, const uint8_t *msg, size_t len, uint8_t sig[64],
                     struct cmig_err *err);

#endif
