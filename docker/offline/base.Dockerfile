# A stand-in for the official Ray image's user layout, on a Debian root built locally (no registry needed):
# the user `ray` (uid 1000, group `users`), home /home/ray, and a Python 3.11 virtualenv on PATH that the
# user can install into, as the Ray image's conda Python is. docker/offline/build.sh builds ROOTFS_IMAGE
# with debootstrap + `docker import` and then this file; docker/Dockerfile takes the result as BASE_IMAGE.
ARG ROOTFS_IMAGE=scaleladder/debian-rootfs:bookworm
FROM ${ROOTFS_IMAGE}
ENV LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
RUN useradd --create-home --uid 1000 --gid users --shell /bin/bash ray \
    && python3 -m venv /home/ray/venv \
    && chown -R ray:users /home/ray
ENV PATH=/home/ray/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
USER ray
WORKDIR /home/ray
CMD ["/bin/bash"]
