# syntax=docker/dockerfile:1
# The kgate image: one static binary, /kgate, whose subcommands are the
# components (kgate controller, kgate activator, ...). See docs/kubernetes.md.
#
#   docker build -t ghcr.io/kgate/kgate:v0.1.0 .
#
# Multi-platform: docker buildx build --platform linux/amd64,linux/arm64 ...
# (the Go compiler cross-compiles; nothing runs under emulation).

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -buildvcs=false -ldflags="-s -w" -o /out/kgate ./cmd/kgate

FROM gcr.io/distroless/static:nonroot
COPY --from=build /out/kgate /kgate
# distroless' nonroot user; the manifests also set runAsUser 65532
USER 65532:65532
ENTRYPOINT ["/kgate"]
