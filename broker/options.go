package broker

import (
	"io"
	"log/slog"

	"github.com/courier-mqtt/courier/auth"
	mqtt "github.com/mochi-mqtt/server/v2"
)

// Option supplies what only code can: loggers, extra hooks, stores.
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

type options struct {
	logger *slog.Logger
	hooks  []hookEntry
	auth   bool // an authentication hook is among hooks

	verifier *auth.Verifier
}

type hookEntry struct {
	hook   mqtt.Hook
	config any
}

func defaultOptions() options {
	return options{logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// WithLogger sets the broker's logger. The default discards everything.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(o *options) {
		if l != nil {
			o.logger = l
		}
	})
}

// WithHook registers an extra mochi hook, after the broker's own. It is the
// escape hatch to mochi's hook API (github.com/mochi-mqtt/server/v2). mochi
// ORs authentication and ACL answers across hooks: a hook that provides
// OnConnectAuthenticate or OnACLCheck must be registered with WithAuthHook so
// the broker does not also enable anonymous access.
func WithHook(h mqtt.Hook, config any) Option {
	return optionFunc(func(o *options) { o.hooks = append(o.hooks, hookEntry{h, config}) })
}

// WithAuthHook registers a mochi hook that authenticates clients and checks
// their ACLs. With one registered the broker never enables anonymous access,
// whatever Config.AllowAnonymous says.
func WithAuthHook(h mqtt.Hook, config any) Option {
	return optionFunc(func(o *options) {
		o.hooks = append(o.hooks, hookEntry{h, config})
		o.auth = true
	})
}

// WithTokenVerifier turns on broker-token authentication with a verifier
// built in code (for example from keys held in a secret manager) instead of
// key files in Config.Auth. Anonymous access is then off.
func WithTokenVerifier(v *auth.Verifier) Option {
	return optionFunc(func(o *options) {
		o.verifier = v
		o.auth = true
	})
}
