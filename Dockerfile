# perfscope's container image: built with the Rust toolchain, run on a
# distroless base as a non-root user, with no shell at run time.
#
#   docker build -t perfscope:0.1.0 .
#   docker run --rm -p 8080:8080 -e PERFSCOPE_LISTEN=0.0.0.0:8080 \
#     -e PERFSCOPE_ADMIN_TOKEN=... -e DATABASE_URL=postgres://... perfscope:0.1.0

FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so source changes do not rebuild them.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches bench examples \
    && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && for b in middleware lag_accuracy cache toolkit_pg pool_overhead; do echo 'fn main() {}' > benches/$b.rs; done \
    && echo 'fn main() {}' > bench/server.rs && echo 'fn main() {}' > examples/shop.rs \
    && cargo build --release --locked --features agent --bin perfscope || true
COPY . .
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --features agent --bin perfscope

# glibc, CA certificates and a nonroot user (65532), nothing else.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/perfscope /usr/local/bin/perfscope
USER 65532:65532
EXPOSE 8080
ENV PERFSCOPE_LISTEN=0.0.0.0:8080 PERFSCOPE_LOG_FORMAT=json
ENTRYPOINT ["/usr/local/bin/perfscope"]
CMD ["serve"]
