package broker

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/courier-mqtt/courier/auth"
	"github.com/courier-mqtt/courier/hooks"
	"gopkg.in/yaml.v3"
)

// authHooks builds the authentication hook the configuration asks for:
// broker tokens, or a users file, or none.
func (b *Broker) authHooks() ([]hookEntry, error) {
	logger := b.opts.logger
	switch {
	case b.opts.verifier != nil || b.cfg.Auth.TokenAuthEnabled():
		v := b.opts.verifier
		if v == nil {
			var err error
			if v, err = b.cfg.Auth.NewVerifier(); err != nil {
				return nil, fmt.Errorf("auth: %w", err)
			}
		}
		// With a users file as well, the token hook checks passwords that are
		// not tokens against it: one hook, since mochi ORs auth answers.
		var users *auth.Users
		if b.cfg.Auth.UsersFile != "" {
			var err error
			if users, err = b.cfg.Auth.LoadUsers(yaml.Unmarshal); err != nil {
				return nil, fmt.Errorf("auth: %w", err)
			}
		}
		h, err := hooks.NewTokenAuth(hooks.TokenAuthOptions{Verifier: v, Users: users, Logger: logger, OnDenied: b.denied})
		if err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
		return []hookEntry{{h, nil}}, nil
	case b.cfg.Auth.UsersFile != "":
		users, err := b.cfg.Auth.LoadUsers(yaml.Unmarshal)
		if err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
		h, err := hooks.NewUsersAuth(hooks.UsersAuthOptions{Users: users, Logger: logger, OnDenied: b.denied})
		if err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
		return []hookEntry{{h, nil}}, nil
	}
	return nil, nil
}

// denied turns an auth hook's refusal into a metric and an event. It runs on
// a client's goroutine and never blocks.
func (b *Broker) denied(d hooks.Denial) {
	b.metrics.authDenied.WithLabelValues(d.Op).Inc()
	reason := d.Op
	if d.Err != nil {
		reason += ": " + d.Err.Error()
	}
	b.emit(Event{
		Kind: EventAuthDenied, ClientID: d.ClientID, Username: d.Identity,
		Remote: d.Remote, Topic: d.Topic, Reason: reason,
	})
}

// tokenAPIServer serves the Courier token API on its own listener.
type tokenAPIServer struct {
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
}

func (b *Broker) startTokenAPI() (*tokenAPIServer, error) {
	api, err := b.cfg.Auth.NewTokenAPI(yaml.Unmarshal, b.opts.logger)
	if err != nil {
		return nil, fmt.Errorf("token api: %w", err)
	}
	ln, err := net.Listen("tcp", b.cfg.TokenAPI.Addr)
	if err != nil {
		return nil, fmt.Errorf("token api: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle(auth.TokenPath, api)
	t := &tokenAPIServer{ln: ln, done: make(chan struct{}),
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
	go func() {
		defer close(t.done)
		if err := t.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			b.log.Error("token api stopped", "err", err)
		}
	}()
	return t, nil
}
