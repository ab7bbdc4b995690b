/*
 * test_redact.c - redact_url (runner/log.c), the one step between a
 * database URL and cmig-run's log: every secret a database client would
 * read from the URL comes out as "***", and the rest is left readable.
 *
 * The source is included directly: unit tests link only the format
 * library.
 */
#include "../../runner/log.c"

#include "harness.h"

/* redact_url(url) in a buffer of cap bytes. */
static const char *red(const char *url, size_t cap)
{
    static char out[4096];
    memset(out, 'x', sizeof out);
    redact_url(url, out, cap);
    return out;
}

static const char *redacted(const char *url)
{
    return red(url, 4096);
}

TEST(userinfo_password)
{
    CHECK_STR(redacted("postgres://app:s3cret@db:5432/app"), "postgres://app:***@db:5432/app");
    CHECK_STR(redacted("postgresql://app:p%40ss@db/app"), "postgresql://app:***@db/app");
    CHECK_STR(redacted("mongodb://app:s3cret@a:27017,b:27017/app?replicaSet=rs0"),
              "mongodb://app:***@a:27017,b:27017/app?replicaSet=rs0");
    /* An empty password is not shown to be empty. */
    CHECK_STR(redacted("postgres://app:@db/app"), "postgres://app:***@db/app");
    CHECK_STR(redacted("postgres://app@db/app"), "postgres://app@db/app");
    CHECK_STR(redacted("sqlite:///var/lib/app.db"), "sqlite:///var/lib/app.db");
}

TEST(query_secrets)
{
    CHECK_STR(redacted("postgres://app@db/app?sslpassword=kp&application_name=x"),
              "postgres://app@db/app?sslpassword=***&application_name=x");
    CHECK_STR(redacted("postgres://db/app?pass%77ord=pw&sslmode=require"),
              "postgres://db/app?pass%77ord=***&sslmode=require");
    CHECK_STR(redacted("postgres://db/app?sslpassword="), "postgres://db/app?sslpassword=***");
}

/* The '@' that the redactor takes for the end of the userinfo (the last one
 * before any '/') can lie inside a query value. Masking the userinfo first
 * used to swallow "?sslpassword=" with it and print the rest of the value:
 * "postgres://app@db:***@cret" (tests/fuzz/corpus/redact). */
TEST(query_secret_after_a_pathless_authority)
{
    const char *r = redacted("postgres://app@db:5432?sslpassword=se@cret");
    CHECK(strstr(r, "cret") == NULL);
    CHECK_STR(r, "postgres://app@db:***");
    r = redacted("postgres://app:pw@db:5432?sslpassword=a@b@c&sslmode=require");
    CHECK(strstr(r, "pw") == NULL && strstr(r, "b@c") == NULL && strstr(r, "@c") == NULL);
    CHECK_STR(r, "postgres://app:***@***&sslmode=require");
    /* A '?' inside the password: the whole of it goes, and the rest of
     * the URL stays as it was. */
    CHECK_STR(redacted("postgres://app:a?password=b@db/app"), "postgres://app:***@db/app");
}

/* The first '@' ends the userinfo for libpq and libmongoc; a password
 * typed with a bare '@' is masked up to the last one, but that first '@'
 * stays. Masked with the rest, the user name read back ran on into a query
 * of its own: "postgres://db?sslpassword=u:***" gave libpq the sslpassword
 * "u:***" (tests/fuzz/corpus/redact/redact-userinfo-at-swallowed). */
TEST(first_at_of_the_userinfo_stays)
{
    CHECK_STR(redacted("postgres://db?sslpassword=u:pw@x?sslpassword=@y"),
              "postgres://db?sslpassword=u:***@***");
    CHECK_STR(redacted("postgres://app:p@ss@db/app"), "postgres://app:***@***@db/app");
    CHECK_STR(redacted("mongodb://app:p@ss@db/app"), "mongodb://app:***@***@db/app");
    /* An escaped '@' ends nothing for libmongoc. */
    CHECK_STR(redacted("mongodb://app:p\\@ss@db/app"), "mongodb://app:***@db/app");
    /* Two '@' in a row: nothing between them to hide. */
    CHECK_STR(redacted("postgres://app:pw@@db/app"), "postgres://app:***@@db/app");
}

/* Before the first '@' is the userinfo for every parser: a '?' or '&' there
 * starts no parameter. Taken for one, its mask ran past that '@' and the
 * later text read as the userinfo ("...:***&AKIA@db/app" read back with the
 * password "***&AKIA"). */
TEST(no_parameter_inside_the_userinfo)
{
    CHECK_STR(
        redacted("mongodb://AKIA&authMechanismProperties=x:pw@db/app?authMechanism=MONGODB-AWS"
                 "&AKIA@db/app?authMechanismProperties=AWS_SESSION_TOKEN:t"),
        "mongodb://AKIA&authMechanismProperties=x:***@db/app?authMechanism=MONGODB-AWS"
        "&AKIA@db/app?authMechanismProperties=***");
    CHECK_STR(redacted("postgres://app:p&sslpassword=q@db/app?sslpassword=kp"),
              "postgres://app:***@db/app?sslpassword=***");
}

/* MongoDB: the credentials that authMechanismProperties carries
 * (AWS_SESSION_TOKEN for MONGODB-AWS), masked whole, whatever the case of
 * the option name, and the passphrase of the client's TLS key. */
TEST(mongodb_options)
{
    CHECK_STR(redacted("mongodb://AKIAEXAMPLE:s3cret@db/app?authMechanism=MONGODB-AWS"
                       "&authMechanismProperties=AWS_SESSION_TOKEN:tok123&authSource=$external"),
              "mongodb://AKIAEXAMPLE:***@db/app?authMechanism=MONGODB-AWS"
              "&authMechanismProperties=***&authSource=$external");
    CHECK_STR(redacted("mongodb://db/app?AUTHMECHANISMPROPERTIES=AWS_SESSION_TOKEN:t%6Fk"),
              "mongodb://db/app?AUTHMECHANISMPROPERTIES=***");
    CHECK_STR(redacted("mongodb+srv://c.example.com/app?authmechanismproperties="
                       "SERVICE_NAME:mongodb,AWS_SESSION_TOKEN:tok"),
              "mongodb+srv://c.example.com/app?authmechanismproperties=***");
    CHECK_STR(redacted("mongodb://db/app?tls=true&tlsCertificateKeyFilePassword=kp"),
              "mongodb://db/app?tls=true&tlsCertificateKeyFilePassword=***");
    CHECK_STR(redacted("mongodb://db/app?ssl=true&sslClientCertificateKeyPassword=kp"),
              "mongodb://db/app?ssl=true&sslClientCertificateKeyPassword=***");
}

/* libmongoc lets a backslash escape the next character when it looks for
 * the '/' that ends the hosts, the '@' that ends the userinfo and the '&'
 * that ends a value. Read without that, "p\\/w" ended the authority and the
 * password was printed whole, and "a\\&b" left "b" of a value in sight
 * (found by fuzz_redact). libpq gives a backslash no meaning in a URL. */
TEST(mongodb_backslash_escapes)
{
    CHECK_STR(redacted("mongodb://app:p\\/w@db/app"), "mongodb://app:***@db/app");
    CHECK_STR(redacted("mongodb://us\\/er:s3cret@db/app"), "mongodb://us\\/er:***@db/app");
    CHECK_STR(redacted("mongodb://db/app?tlsCertificateKeyFilePassword=a\\&b=1&appName=x"),
              "mongodb://db/app?tlsCertificateKeyFilePassword=***&appName=x");
    CHECK_STR(redacted("mongodb://db/app?authMechanismProperties=AWS_SESSION_TOKEN:t\\&k&w=1"),
              "mongodb://db/app?authMechanismProperties=***&w=1");
    /* An escaped backslash escapes nothing after it. */
    CHECK_STR(redacted("mongodb://db/app?tlsCertificateKeyFilePassword=a\\\\&w=1"),
              "mongodb://db/app?tlsCertificateKeyFilePassword=***&w=1");
    /* For libpq the '/' ends the authority: its query, with the secret,
     * starts after it, and that stays where libpq finds it. */
    CHECK_STR(redacted("postgres://db\\/app?sslpassword=kp@x/y"),
              "postgres://db\\/app?sslpassword=***");
}

TEST(keyword_form)
{
    CHECK_STR(redacted("host=db password='a b' sslpassword=x user=app"),
              "host=db password='***' sslpassword=*** user=app");
    CHECK_STR(redacted("host=db password = 'it\\'s' dbname=app"),
              "host=db password = '***' dbname=app");
}

TEST(short_buffer)
{
    char full[4096];
    snprintf(full, sizeof full, "%s", redacted("postgres://app:s3cret@db:5432/app"));
    for (size_t cap = 1; cap < 40; cap++) {
        const char *r = red("postgres://app:s3cret@db:5432/app", cap);
        CHECK(strlen(r) < cap && strncmp(r, full, strlen(r)) == 0);
        CHECK(strstr(r, "s3c") == NULL);
    }
}

/* Many secrets, each masked; the result fits the room redact_url sets. */
TEST(many_secrets)
{
    char url[2048] = "postgres://db/app?";
    for (int i = 0; i < 150; i++)
        strcat(url, "&password=");
    const char *r = redacted(url);
    CHECK(strlen(r) == strlen(url) + 150 * 3);
    CHECK(strstr(r, "&password=&") == NULL);
}

int main(void)
{
    SUITE("redact");
    RUN(userinfo_password);
    RUN(query_secrets);
    RUN(query_secret_after_a_pathless_authority);
    RUN(first_at_of_the_userinfo_stays);
    RUN(no_parameter_inside_the_userinfo);
    RUN(mongodb_options);
    RUN(mongodb_backslash_escapes);
    RUN(keyword_form);
    RUN(short_buffer);
    RUN(many_secrets);
    return harness_done();
}
