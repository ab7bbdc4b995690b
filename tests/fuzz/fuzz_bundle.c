/*
 * fuzz_bundle.c - libFuzzer target for opening a bundle the way cmig-run
 * does: behind a real minisign signature, checked with a trusted key.
 *
 * A fuzzer cannot forge Ed25519, so the harness signs what it is given with
 * fixed test keys (derived from fixed seeds, so every run and every replay
 * signs alike) and opens it with the signature check on. Everything after
 * the check - the trusted comment's claim against the manifest, the walk,
 * handing files out - then sees the mutated bytes. The harness also breaks
 * the signature on purpose, in ways whose outcome it knows.
 *
 * Input: three control bytes, one line, then the payload.
 *   ctl & 7         what is signed and how (enum mode below)
 *   (ctl >> 3) & 3  full open, manifest only, signature only then
 *                   cmig_bundle_load_manifest, full again
 *   ctl & 0x20      bundle read once into memory (else streamed twice)
 *   ctl & 0x40      whole_max 1 MiB (else 32 bytes: files come as streams)
 *   ctl & 0x80      the payload is a finished .cmig file; else it is an
 *                   uncompressed tar, whose header checksums the harness
 *                   fixes and which it gzips, so that mutations reach the
 *                   tar entries and the manifest instead of dying in zlib
 *   p1, p2          a position or a choice, by mode
 *   line            the untrusted or the trusted comment, by mode
 *
 * The verdict is predicted from what the harness knows: how it signed, and
 * the result of opening the same bytes with CMIG_OPEN_SKIP_SIGNATURE (whose
 * manifest gives the claim a correct trusted comment makes). The open must
 * reach exactly that verdict; a refusal must be CMIG_E_VERIFY; an accepted
 * bundle must report its signer, trusted comment and claim, and hand out
 * exactly its files (walk_check.h).
 */
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "cmig/bundle.h"
#include "cmig/keys.h"
#include "cmig/sig.h"
#include "fuzz_util.h"
#include "walk_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum mode {
    MODE_CLAIM,     /* the trusted comment cmig-bundle would sign */
    MODE_UNTRUSTED, /* the same, with the line as the untrusted comment */
    MODE_TCOMMENT,  /* the line is the trusted comment */
    MODE_CLAIM_OFF, /* one field of the claim changed (p1 picks it) */
    MODE_SIG_FLIP,  /* one byte of the signature file changed (p1, p2) */
    MODE_FILE_FLIP, /* one byte of the bundle changed after signing */
    MODE_OTHER_KEY, /* signed by the ring's other key (p1 odd) or by a stranger */
    MODE_APPENDED   /* bytes appended to the bundle after signing */
};

enum open_kind { OPEN_FULL, OPEN_MANIFEST_ONLY, OPEN_SIGNATURE_ONLY };

#define LINE_MAX_BYTES 4096
#define SMALL_WHOLE_MAX 32
#define UNTRUSTED_PREFIX_LEN 19 /* "untrusted comment: " */

/* ---- fixed keys ---------------------------------------------------------- */

static struct cmig_seckey *keys[3]; /* two trusted, one stranger */
static struct cmig_pubkey pubs[3];
static struct cmig_keyring ring;

/* A minisign secret key file for a key derived from a fixed seed, parsed by
 * cmig's own parser: the harness signs with the real key type. */
static struct cmig_seckey *fixed_key(int which)
{
    uint8_t seed[crypto_sign_SEEDBYTES], pk[crypto_sign_PUBLICKEYBYTES];
    uint8_t blob[158];
    char label[32], b64[sodium_base64_ENCODED_LEN(158, sodium_base64_VARIANT_ORIGINAL)];
    char text[512];
    struct cmig_err err;
    struct cmig_seckey *k = NULL;

    snprintf(label, sizeof label, "cmig fuzz key %d", which);
    crypto_generichash(seed, sizeof seed, (const uint8_t *)label, strlen(label), NULL, 0);
    memset(blob, 0, sizeof blob);
    memcpy(blob, "Ed", 2); /* kdf "\0\0": not encrypted; salt and limits zero */
    memcpy(blob + 4, "B2", 2);
    crypto_sign_seed_keypair(pk, blob + 62, seed); /* key id at 54, key at 62 */
    uint8_t id[16]; /* BLAKE2b's shortest output; the id is its first 8 bytes */
    crypto_generichash(id, sizeof id, pk, sizeof pk, NULL, 0);
    memcpy(blob + 54, id, 8);
    crypto_generichash_state st; /* checksum: BLAKE2b-256(alg || id || key) */
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, blob, 2);
    crypto_generichash_update(&st, blob + 54, 8 + 64);
    crypto_generichash_final(&st, blob + 126, 32);
    sodium_bin2base64(b64, sizeof b64, blob, sizeof blob, sodium_base64_VARIANT_ORIGINAL);
    int n = snprintf(text, sizeof text, "untrusted comment: fuzz key %d\n%s\n", which, b64);
    cmig_err_clear(&err);
    REQUIRE(cmig_seckey_parse(&k, text, (size_t)n, NULL, "fuzz key", &err) == 0);
    sodium_memzero(blob, sizeof blob);
    sodium_memzero(text, sizeof text);
    return k;
}

static void setup_keys(void)
{
    struct cmig_err err;
    if (keys[0])
        return;
    REQUIRE(sodium_init() >= 0);
    for (int i = 0; i < 3; i++) {
        keys[i] = fixed_key(i);
        cmig_seckey_pubkey(keys[i], &pubs[i]);
    }
    cmig_err_clear(&err);
    REQUIRE(cmig_keyring_add(&ring, &pubs[0], &err) == 0);
    REQUIRE(cmig_keyring_add(&ring, &pubs[1], &err) == 0);
    REQUIRE(ring.n == 2 && cmig_keyring_find(&ring, pubs[2].id) == NULL);
}

/* ---- building the bundle bytes -------------------------------------------- */

static uint64_t tar_octal(const uint8_t *p, size_t n, int *ok)
{
    uint64_t v = 0;
    size_t i = 0;
    *ok = 1;
    while (i < n && p[i] == ' ')
        i++;
    for (; i < n && p[i] >= '0' && p[i] <= '7'; i++) {
        if (v >> 60)
            break;
        v = v * 8 + (uint64_t)(p[i] - '0');
    }
    if (i < n && p[i] != ' ' && p[i] != '\0')
        *ok = 0;
    return v;
}

/* Sets the checksum of every header the tar's own size fields lead to. */
static void tar_fix_checksums(uint8_t *t, size_t n)
{
    size_t off = 0;
    while (off + 512 <= n) {
        uint8_t *h = t + off;
        size_t z = 0;
        while (z < 512 && h[z] == 0)
            z++;
        if (z == 512)
            return; /* the end-of-archive blocks */
        unsigned sum = 0;
        memset(h + 148, ' ', 8);
        for (size_t i = 0; i < 512; i++)
            sum += h[i];
        char field[8];
        snprintf(field, sizeof field, "%06o", sum & 0777777);
        memcpy(h + 148, field, 7);
        int ok;
        uint64_t len = tar_octal(h + 124, 12, &ok);
        if (!ok || len > n)
            return;
        off += 512 + (size_t)((len + 511) / 512 * 512);
    }
}

/* gzip (zlib's own header, no name, time 0: the same bytes every time). */
static uint8_t *gzip_bytes(const uint8_t *in, size_t n, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    size_t cap = deflateBound(&z, (uLong)n) + 64;
    uint8_t *out = malloc(cap);
    if (!out) {
        deflateEnd(&z);
        return NULL;
    }
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int zrc = deflate(&z, Z_FINISH);
    *out_len = cap - z.avail_out;
    deflateEnd(&z);
    if (zrc != Z_STREAM_END) {
        free(out);
        return NULL;
    }
    return out;
}

/* ---- the prediction ------------------------------------------------------- */

static void limits_for(struct cmig_limits *lim, unsigned ctl)
{
    cmig_limits_default(lim);
    lim->max_manifest_bytes = 1 << 20;
    lim->max_entry_bytes = 1 << 20;
    lim->max_total_bytes = 4 << 20;
    lim->max_entries = 1000;
    lim->in_memory_max = (ctl & 0x20) ? UINT64_MAX : 0;
    lim->whole_max = (ctl & 0x40) ? 1 << 20 : SMALL_WHOLE_MAX;
}

/* What the same bytes give without a signature: whether a full open and a
 * manifest-only open pass, and the claim their manifest makes. */
struct unsigned_view {
    int full_ok, manifest_ok;
    struct cmig_claim own;
};

static void open_unsigned(struct unsigned_view *v, const char *path, const struct cmig_limits *lim)
{
    static struct cmig_err err;
    struct cmig_bundle *b = NULL;
    struct cmig_open_opts o = {.flags = CMIG_OPEN_SKIP_SIGNATURE, .limits = lim};
    memset(v, 0, sizeof *v);
    cmig_err_clear(&err);
    v->full_ok = cmig_bundle_open(&b, path, &o, &err) == 0;
    if (!v->full_ok) {
        REQUIRE(err.code == CMIG_E_VERIFY || err.code == CMIG_E_NOMEM);
        o.flags |= CMIG_OPEN_MANIFEST_ONLY;
        cmig_err_clear(&err);
        if (cmig_bundle_open(&b, path, &o, &err) != 0)
            return;
    }
    v->manifest_ok = 1;
    cmig_claim_of(&v->own, cmig_bundle_manifest(b), cmig_bundle_manifest_sha256(b));
    cmig_bundle_close(b);
}

static int same_claim(const struct cmig_claim *a, const struct cmig_claim *b)
{
    return strcmp(a->name, b->name) == 0 && strcmp(a->version, b->version) == 0 &&
           memcmp(a->manifest_sha256, b->manifest_sha256, 32) == 0 &&
           a->migrations == b->migrations && a->last == b->last &&
           a->format_version == b->format_version;
}

/* One field of c changed, p picking which. */
static void claim_off(struct cmig_claim *c, unsigned p)
{
    switch (p % 6) {
    case 0: {
        size_t n = strlen(c->name);
        if (n < CMIG_BUNDLE_NAME_MAX)
            c->name[n] = 'x', c->name[n + 1] = '\0';
        else
            c->name[n - 1] = c->name[n - 1] == 'x' ? 'y' : 'x';
        break;
    }
    case 1:
        snprintf(c->version, sizeof c->version, "%s",
                 strcmp(c->version, "1.2.3") ? "1.2.3" : "1.2.4");
        break;
    case 2:
        c->manifest_sha256[(p >> 3) % 32] ^= (uint8_t)(1u << (p % 8));
        break;
    case 3:
        c->migrations++;
        break;
    case 4:
        c->last = c->last == -1 ? 1 : c->last - 1;
        break;
    default:
        c->format_version = 2;
        break;
    }
}

/* ---- the target ------------------------------------------------------------ */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char tc[CMIG_TRUSTED_COMMENT_MAX + 1], uc[CMIG_COMMENT_MAX + 1];
    static struct cmig_err err;
    if (size < 4)
        return 0;
    setup_keys();
    unsigned ctl = data[0], p1 = data[1], p2 = data[2];
    enum mode mode = (enum mode)(ctl & 7);
    enum open_kind kind = (enum open_kind)(((ctl >> 3) & 3) % 3);
    const uint8_t *nl =
        memchr(data + 3, '\n', size - 3 < LINE_MAX_BYTES ? size - 3 : LINE_MAX_BYTES);
    if (!nl)
        return 0;
    size_t line_len = (size_t)(nl - (data + 3));
    const char *line = (const char *)data + 3;
    if (memchr(line, '\0', line_len) || memchr(line, '\r', line_len))
        return 0;
    const uint8_t *payload = nl + 1;
    size_t payload_len = size - (size_t)(payload - data);

    /* The bytes that are signed. */
    uint8_t *bundle;
    size_t bundle_len;
    if (ctl & 0x80) {
        bundle = malloc(payload_len ? payload_len : 1);
        if (!bundle)
            return 0;
        memcpy(bundle, payload, payload_len);
        bundle_len = payload_len;
    } else {
        uint8_t *tar = malloc(payload_len ? payload_len : 1);
        if (!tar)
            return 0;
        memcpy(tar, payload, payload_len);
        tar_fix_checksums(tar, payload_len);
        bundle = gzip_bytes(tar, payload_len, &bundle_len);
        free(tar);
        if (!bundle)
            return 0;
    }
    /* One spare byte for MODE_APPENDED. */
    uint8_t *grown = realloc(bundle, bundle_len + 1);
    if (!grown) {
        free(bundle);
        return 0;
    }
    bundle = grown;

    struct cmig_limits lim;
    limits_for(&lim, ctl);
    char path[64], sig_path[64];
    int fd = fuzz_memfile(bundle, bundle_len, path, sizeof path);
    if (fd < 0) {
        free(bundle);
        return 0;
    }
    struct unsigned_view uv;
    open_unsigned(&uv, path, &lim);

    /* The claim, the comments and the key. */
    struct cmig_claim claim;
    if (uv.manifest_ok) {
        claim = uv.own;
    } else {
        memset(&claim, 0, sizeof claim);
        snprintf(claim.name, sizeof claim.name, "fuzz");
        snprintf(claim.version, sizeof claim.version, "1.0.0");
        claim.last = -1;
        claim.format_version = 1;
    }
    if (mode == MODE_CLAIM_OFF)
        claim_off(&claim, p1 | p2 << 8);
    snprintf(uc, sizeof uc, "fuzz");
    if (mode == MODE_TCOMMENT) {
        if (line_len >= sizeof tc)
            goto out;
        memcpy(tc, line, line_len);
        tc[line_len] = '\0';
    } else {
        REQUIRE(cmig_trusted_comment_format(tc, sizeof tc, &claim) == 0);
    }
    if (mode == MODE_UNTRUSTED) {
        if (line_len >= sizeof uc)
            goto out;
        memcpy(uc, line, line_len);
        uc[line_len] = '\0';
    }
    int signer = mode == MODE_OTHER_KEY ? ((p1 & 1) ? 1 : 2) : 0;

    uint8_t prehash[CMIG_PREHASH_BYTES];
    crypto_generichash(prehash, sizeof prehash, bundle, bundle_len, NULL, 0);
    char *sig_text = NULL;
    size_t sig_len = 0;
    cmig_err_clear(&err);
    if (cmig_sig_create(keys[signer], prehash, uc, tc, &sig_text, &sig_len, &err) != 0) {
        /* Only comments minisign could not read back are refused. */
        REQUIRE(err.code == CMIG_E_USAGE);
        REQUIRE(strlen(uc) > 1003 || strlen(tc) > 8192 - 17 - 2);
        goto out;
    }

    /* Breaking it after the fact. */
    int sig_intact = signer != 2;
    if (mode == MODE_SIG_FLIP) {
        size_t at = (p1 | p2 << 8) % sig_len;
        uint8_t mask = (uint8_t)(((p2 >> 1) | 1) & 0xff);
        sig_text[at] = (char)(sig_text[at] ^ mask);
        char now = sig_text[at];
        /* Only the untrusted comment is outside both signatures. */
        sig_intact = at >= UNTRUSTED_PREFIX_LEN && at < UNTRUSTED_PREFIX_LEN + strlen(uc) &&
                     now != '\n' && now != '\r' && now != '\0';
    }
    int file_intact = 1;
    if (mode == MODE_FILE_FLIP || mode == MODE_APPENDED) {
        if (mode == MODE_FILE_FLIP && bundle_len > 0) {
            bundle[(p1 | p2 << 8) % bundle_len] ^= (uint8_t)(p1 | 1);
        } else {
            bundle[bundle_len++] = (uint8_t)p1;
        }
        close(fd);
        fd = fuzz_memfile(bundle, bundle_len, path, sizeof path);
        file_intact = 0;
    }
    int sfd = fuzz_memfile(sig_text, sig_len, sig_path, sizeof sig_path);
    free(sig_text);
    if (fd < 0 || sfd < 0) {
        if (sfd >= 0)
            close(sfd);
        goto out;
    }

    /* The prediction. */
    struct cmig_claim signed_claim;
    struct cmig_err perr;
    cmig_err_clear(&perr);
    int tc_ok = cmig_trusted_comment_parse(tc, &signed_claim, &perr) == 0;
    if (tc_ok) {
        /* The grammar has one spelling for each claim. */
        char again[CMIG_TRUSTED_COMMENT_MAX + 1];
        REQUIRE(cmig_trusted_comment_format(again, sizeof again, &signed_claim) == 0);
        REQUIRE(strcmp(again, tc) == 0);
    } else {
        REQUIRE(perr.code == CMIG_E_VERIFY);
    }
    int sig_ok = sig_intact && file_intact && tc_ok && signed_claim.format_version == 1;
    int names_ok = sig_ok && uv.manifest_ok && strcmp(signed_claim.name, uv.own.name) == 0 &&
                   strcmp(signed_claim.version, uv.own.version) == 0 &&
                   signed_claim.migrations == uv.own.migrations && signed_claim.last == uv.own.last;
    int hash_ok = memcmp(signed_claim.manifest_sha256, uv.own.manifest_sha256, 32) == 0;
    /* A bundle read once into memory is covered by the file signature as
     * parsed; a manifest-only open then takes the signed hash as it is
     * (the walks compare it). Read twice, the manifest is hashed. */
    int in_memory = bundle_len <= lim.in_memory_max;
    int manifest_ok = names_ok && (hash_ok || in_memory);
    int full_ok = names_ok && hash_ok && uv.full_ok;

    unsigned flags = kind == OPEN_MANIFEST_ONLY    ? CMIG_OPEN_MANIFEST_ONLY
                     : kind == OPEN_SIGNATURE_ONLY ? CMIG_OPEN_SIGNATURE_ONLY
                                                   : 0;
    struct cmig_open_opts o = {.keys = &ring, .sig_path = sig_path, .flags = flags, .limits = &lim};
    struct cmig_bundle *b = NULL;
    cmig_err_clear(&err);
    int rc = cmig_bundle_open(&b, path, &o, &err);
    int expect = kind == OPEN_FULL ? full_ok : kind == OPEN_MANIFEST_ONLY ? manifest_ok : sig_ok;
    if (rc != 0) {
        REQUIRE(!expect);
        REQUIRE(b == NULL && rc == err.code && err.msg[0] != '\0');
        REQUIRE(err.code == CMIG_E_VERIFY || err.code == CMIG_E_NOMEM);
        close(sfd);
        goto out;
    }
    REQUIRE(expect);
    REQUIRE(memcmp(cmig_bundle_signer(b), &pubs[signer], sizeof pubs[signer]) == 0);
    REQUIRE(strcmp(cmig_bundle_trusted_comment(b), tc) == 0);
    REQUIRE(same_claim(cmig_bundle_claim(b), &signed_claim));
    if (kind == OPEN_SIGNATURE_ONLY) {
        REQUIRE(cmig_bundle_manifest(b) == NULL);
        cmig_err_clear(&err);
        int lr = cmig_bundle_load_manifest(b, &err);
        REQUIRE((lr == 0) == manifest_ok);
        if (lr != 0) {
            REQUIRE(err.code == CMIG_E_VERIFY || err.code == CMIG_E_NOMEM);
            cmig_bundle_close(b);
            close(sfd);
            goto out;
        }
    }
    const struct cmig_manifest *m = cmig_bundle_manifest(b);
    REQUIRE(m != NULL && m->n == signed_claim.migrations);
    if (full_ok) {
        check_walks(b, p2, data, size, lim.whole_max);
    } else {
        /* Accepted on the manifest alone: the first walk over the entries
         * finds what the open did not look at. */
        cmig_err_clear(&err);
        REQUIRE(cmig_bundle_each_file(b, NULL, NULL, NULL, &err) == CMIG_E_VERIFY);
    }
    cmig_bundle_close(b);
    close(sfd);
out:
    if (fd >= 0)
        close(fd);
    free(bundle);
    return 0;
}
