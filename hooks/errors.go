package hooks

import "errors"

var (
	// ErrNoVerifier is returned by NewTokenAuth when no Verifier is given.
	ErrNoVerifier = errors.New("hooks: token auth needs a verifier")
	// ErrNoUsers is returned by NewUsersAuth when no Users are given.
	ErrNoUsers = errors.New("hooks: users auth needs users")
)
