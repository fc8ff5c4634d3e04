# courier: run `make run` for a broker on the default settings, `make test`
# for the suite. Only Go is needed; tools run through `go run` at pinned
# versions.
GO          ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: run test fuzz bench lint cover build

## run: the broker on its embedded default (loopback, anonymous, store in ./data)
run:
	$(GO) run ./cmd/broker

## test: the whole suite with the race detector, then a short bounded fuzz run
test:
	$(GO) test -race -count=1 ./...
	$(MAKE) fuzz FUZZTIME=10s

## fuzz: fuzz a client connection's input for FUZZTIME (default 30s); the
## seed corpus in broker/conformance/testdata also runs in every go test
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzConnection$$' -fuzztime $(FUZZTIME) ./broker/conformance/

## bench: our broker (store on and off) beside mosquitto; writes bench/results.md
bench:
	bash bench/run.sh

## lint: go vet and staticcheck
lint:
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

## cover: test coverage summary (cover.out)
cover:
	$(GO) test -race -count=1 -coverprofile=cover.out ./...
	$(GO) tool cover -func=cover.out | tail -n 1

## build: the broker and loadgen binaries in ./bin
build:
	$(GO) build -o bin/ ./cmd/...
