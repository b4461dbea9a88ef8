# Coffer's container image: cofferd and the coffer CLI with the shared libraries they need and
# nothing else (no shell, no package manager), running as an unprivileged user.
#
#   podman build --isolation=chroot -t coffer .      (docker build -t coffer . elsewhere)
#
# The build stage runs the same CMake build as `scripts/dev`; the runtime stage is assembled from
# what `ldd` says the binaries load.

FROM debian:bookworm-slim AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config ca-certificates \
      libgrpc-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler libprotoc-dev \
      libsodium-dev libpq-dev libmicrohttpd-dev libgnutls28-dev libjansson-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY cmake cmake
COPY proto proto
COPY server server
COPY client client
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCOFFER_TESTS=OFF -DCOFFER_BENCH=OFF \
 && cmake --build /build -j"$(nproc)" \
 && cmake --install /build --prefix /opt/coffer --strip
# The runtime file system: the binaries, every library they load, CA roots, and a passwd entry.
RUN set -eu; root=/rootfs; \
    mkdir -p $root/usr/local/bin $root/usr/local/lib $root/etc/ssl/certs $root/tmp $root/run/secrets; \
    cp /opt/coffer/bin/cofferd /opt/coffer/bin/coffer $root/usr/local/bin/; \
    cp -P /opt/coffer/lib/libcoffer.so* $root/usr/local/lib/; \
    for lib in $(LD_LIBRARY_PATH=/opt/coffer/lib ldd /opt/coffer/bin/cofferd /opt/coffer/bin/coffer \
                 | awk '/=> \//{print $3} /^\t\/lib/{print $1}' | sort -u); do \
      real=$(readlink -f "$lib"); mkdir -p "$root$(dirname "$lib")" "$root$(dirname "$real")"; \
      cp "$real" "$root$real"; [ "$lib" = "$real" ] || ln -sf "$real" "$root$lib"; \
    done; \
    cp /etc/ssl/certs/ca-certificates.crt $root/etc/ssl/certs/; \
    echo 'coffer:x:10001:10001:coffer:/nonexistent:/usr/sbin/nologin' > $root/etc/passwd; \
    echo 'coffer:x:10001:' > $root/etc/group; \
    printf 'hosts: files dns\n' > $root/etc/nsswitch.conf; \
    chmod 1777 $root/tmp; chown 10001:10001 $root/run/secrets

FROM scratch
COPY --from=build /rootfs/ /
ENV LD_LIBRARY_PATH=/usr/local/lib \
    COFFER_LISTEN=0.0.0.0:50051 \
    COFFER_METRICS_LISTEN=0.0.0.0:9464
USER 10001:10001
EXPOSE 50051 9464
ENTRYPOINT ["/usr/local/bin/cofferd"]
CMD ["serve"]
