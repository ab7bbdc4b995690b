# cmig container images, all from Debian 12 (bookworm).
#
#   docker build -t cmig-runner .                             runner (default target)
#   docker build --target bundler -t cmig-bundler .           cmig-bundle, for CI and
#                                                             applications' build stages
#   docker build --target runner-mongodb -t cmig-runner-mongodb .
#   docker build --target runner-slim -t cmig-runner-slim .   runner on debian:bookworm-slim
#
# runner: cmig-run, the PostgreSQL driver (SQLite is built in) and exactly the
# shared objects they load, copied from the build stage onto an empty image:
# no shell, no package manager, about 21 MB. Runs as uid 65532 and writes nothing,
# so it works with a read-only root file system.
# runner-mongodb: the same plus the MongoDB driver, whose client library
# brings libicu (~33 MB) and libmongocrypt; kept apart so that PostgreSQL and
# SQLite users do not carry them.
# runner-slim: the same programs on debian:bookworm-slim with Debian's runtime
# packages, for those who want a shell in the image; larger.
#
# BASE_IMAGE is pinned by digest so that a rebuild starts from the same bytes.
# Override it to follow the tag, to use a mirror, or to refresh the pin:
#   docker build --build-arg BASE_IMAGE=debian:bookworm-slim .
ARG BASE_IMAGE=debian:bookworm-slim@sha256:d5d3f9c23164ea16f31852f95bd5959aad1c5e854332fe00f7b3a20fcc9f635c

FROM ${BASE_IMAGE} AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates gcc libc6-dev make pkg-config \
        libarchive-dev libsodium-dev libsqlite3-dev zlib1g-dev \
        libpq-dev libmongoc-dev libbson-dev \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
WORKDIR /src
COPY . .
# Build, then run the unit tests: a failing test fails the image build. (The
# rest of `make check` needs database servers and stock tools; CI runs it.)
RUN make -j"$(nproc)" all \
    && make -j"$(nproc)" unit \
    && make install PREFIX=/usr/local DESTDIR=/out/install \
    && strip --strip-unneeded /out/install/usr/local/bin/* /out/install/usr/local/lib/cmig/drivers/*.so
# One root file system per runner image: the programs, every shared object
# that ldd says they load (the dynamic loader included), the copyright file
# of each Debian package those come from, CA certificates for TLS to the
# database, and a passwd entry for uid 65532. A library that ldd cannot
# resolve fails the build. The Debian packages behind each program's
# libraries are listed too, for the images that install them with apt.
RUN set -eu; \
    resolved() { \
        for f in "$@"; do \
            if ldd "$f" | grep -q 'not found'; then ldd "$f" >&2; return 1; fi; \
        done; \
    }; \
    libs() { \
        for f in "$@"; do \
            ldd "$f" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'; \
        done | sort -u; \
    }; \
    package_of() { \
        for p in "$1" "$(readlink -f "$1")" "/usr$1"; do \
            pkg=$(dpkg -S "$p" 2>/dev/null | head -n 1 | cut -d: -f1); \
            if [ -n "$pkg" ]; then echo "$pkg"; return; fi; \
        done; \
    }; \
    packages() { libs "$@" | while read -r lib; do package_of "$lib"; done | sort -u; }; \
    tree() { \
        root=/out/$1; shift; \
        mkdir -p "$root/usr/local/bin" "$root/usr/local/lib/cmig/drivers" "$root/etc/ssl/certs"; \
        cp /out/install/usr/local/bin/cmig-run "$root/usr/local/bin/"; \
        for d in "$@"; do cp "/out/install/usr/local/lib/cmig/drivers/$d.so" "$root/usr/local/lib/cmig/drivers/"; done; \
        libs "$root/usr/local/bin/cmig-run" "$root"/usr/local/lib/cmig/drivers/*.so | while read -r lib; do \
            cp -L --parents "$lib" "$root"; \
            pkg=$(package_of "$lib"); \
            if [ -n "$pkg" ] && [ -f "/usr/share/doc/$pkg/copyright" ]; then \
                cp --parents "/usr/share/doc/$pkg/copyright" "$root"; \
            fi; \
        done; \
        cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"; \
        printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$root/etc/passwd"; \
        printf 'root:x:0:\nnonroot:x:65532:\n' >"$root/etc/group"; \
        printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$root/etc/nsswitch.conf"; \
    }; \
    resolved /out/install/usr/local/bin/* /out/install/usr/local/lib/cmig/drivers/*.so; \
    tree runner postgres; \
    if [ -f /out/install/usr/local/lib/cmig/drivers/mongodb.so ]; then tree runner-mongodb postgres mongodb; fi; \
    mkdir -p /out/packages; \
    packages /out/install/usr/local/bin/cmig-bundle >/out/packages/bundler; \
    packages /out/install/usr/local/bin/cmig-run /out/install/usr/local/lib/cmig/drivers/postgres.so >/out/packages/runner; \
    echo ca-certificates >>/out/packages/runner

# cmig-bundle for CI jobs and for an application's own image build stage
# (`FROM cmig-bundler AS bundle`); it has a shell. It works in /cmig.
FROM ${BASE_IMAGE} AS bundler
ARG DEBIAN_FRONTEND=noninteractive
COPY --from=build /out/packages/bundler /tmp/packages
RUN apt-get update \
    && apt-get install -y --no-install-recommends $(cat /tmp/packages) \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /tmp/packages \
    && install -d -o 65532 -g 65532 /cmig
COPY --from=build /out/install/usr/local/bin/cmig-bundle /usr/local/bin/cmig-bundle
WORKDIR /cmig
USER 65532:65532
ENTRYPOINT ["cmig-bundle"]
CMD ["help"]

FROM ${BASE_IMAGE} AS runner-slim
ARG DEBIAN_FRONTEND=noninteractive
COPY --from=build /out/packages/runner /tmp/packages
RUN apt-get update \
    && apt-get install -y --no-install-recommends $(cat /tmp/packages) \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /tmp/packages
COPY --from=build /out/install/usr/local/bin/cmig-run /usr/local/bin/cmig-run
COPY --from=build /out/install/usr/local/lib/cmig/drivers/postgres.so /usr/local/lib/cmig/drivers/postgres.so
USER 65532:65532
ENTRYPOINT ["cmig-run"]
CMD ["up"]

FROM scratch AS runner-mongodb
COPY --from=build /out/runner-mongodb/ /
ENV PATH=/usr/local/bin
USER 65532:65532
ENTRYPOINT ["cmig-run"]
CMD ["up"]

# The default target comes last.
FROM scratch AS runner
COPY --from=build /out/runner/ /
ENV PATH=/usr/local/bin
USER 65532:65532
ENTRYPOINT ["cmig-run"]
CMD ["up"]
