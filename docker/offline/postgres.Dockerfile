# PostgreSQL 15 from Debian's own package, on the locally built Debian root, for registries-free hosts.
# It keeps the official `postgres` image's contract the compose file relies on: POSTGRES_USER,
# POSTGRES_PASSWORD and POSTGRES_DB create the role and database on first start, data in
# /var/lib/postgresql/data (PGDATA), port 5432 on all interfaces with password (scram-sha-256) auth,
# and `pg_isready` on PATH for the health check.
ARG ROOTFS_IMAGE=scaleladder/debian-rootfs:bookworm
FROM ${ROOTFS_IMAGE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/* \
    && rm -rf /var/lib/postgresql/15/main /etc/postgresql/15/main \
    && mkdir -p /var/lib/postgresql/data /var/run/postgresql \
    && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PGDATA=/var/lib/postgresql/data \
    LANG=C.UTF-8
VOLUME /var/lib/postgresql/data
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]
