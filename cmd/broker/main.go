// Command broker runs the courier MQTT broker.
//
// With no authentication configured it behaves like mosquitto 2's local-only
// mode: it listens on loopback, allows anonymous clients and says so.
// SIGINT or SIGTERM shut it down gracefully within --shutdown-timeout.
// Run `broker --help` for every setting, and `broker keys` to generate
// token signing keys and API keys.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/courier-mqtt/courier/broker"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr))
}

// run is the whole program; it returns the exit code: 0 after a clean
// shutdown, 1 when the broker fails, 2 for a bad configuration.
func run(ctx context.Context, args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "keys" {
		return runKeys(args[1:], stdout, stderr)
	}
	cfg, err := loadConfig(args, lookupEnv, stdout)
	if errors.Is(err, errHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "broker: invalid configuration:")
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintln(stderr, "  -", line)
		}
		return 2
	}
	logger := newLogger(cfg.Log, stderr)

	b, err := broker.New(cfg.Config, broker.WithLogger(logger))
	if err != nil {
		logger.Error("invalid configuration", "err", err)
		return 2
	}
	if err := b.Start(ctx); err != nil {
		logger.Error("start failed", "err", err)
		_ = b.Shutdown(context.Background())
		return 1
	}
	for _, l := range cfg.Listeners {
		name := l.Name
		if name == "" {
			name = l.Type
		}
		logger.Info("listening", "listener", name, "type", l.Type, "addr", b.Addr(name))
	}
	for _, name := range []string{"ops", "token-api"} {
		if a := b.Addr(name); a != "" {
			logger.Info("listening", "listener", name, "addr", a)
		}
	}

	<-ctx.Done()
	logger.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := b.Shutdown(sctx); err != nil {
		logger.Error("shutdown incomplete", "err", err)
		return 1
	}
	return 0
}

func newLogger(c logConfig, w io.Writer) *slog.Logger {
	level, _ := parseLevel(c.Level)
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("log.level %q is not debug, info, warn or error", s)
	}
	return l, nil
}
