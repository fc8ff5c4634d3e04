# syntax=docker/dockerfile:1
# Build a static broker binary, then ship it alone on a distroless base as a
# non-root user.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/broker ./cmd/broker

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/broker /usr/local/bin/broker
USER nonroot:nonroot
VOLUME ["/data"]
EXPOSE 1883 8083 8080
# Inside a container the broker must listen beyond loopback; anonymous access
# there needs explicit consent (or configure authentication).
ENTRYPOINT ["/usr/local/bin/broker", "--data-dir", "/data", \
  "--mqtt-addr", "0.0.0.0:1883", "--ws-addr", "0.0.0.0:8083", "--ops-addr", "0.0.0.0:8080"]
