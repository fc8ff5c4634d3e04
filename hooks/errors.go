package hooks

import "errors"

var (
	// ErrNoVerifier is returned by NewTokenAuth when no Verifier is given.
	ErrNoVerifier = errors.New("hooks: token auth needs a verifier")
	// ErrNoUsers is returned by NewUsersAuth when no Users are given.
	ErrNoUsers = errors.New("hooks: users auth needs users")
)

// Causes reported in Denial.Err (besides the auth package's token errors).
var (
	// ErrUsernameMismatch: the CONNECT username is not the token's subject
	// (CONNACK 0x86).
	ErrUsernameMismatch = errors.New("hooks: username does not match token subject")
	// ErrClientIDMismatch: the CONNECT client id is not the token's cid
	// (CONNACK 0x87).
	ErrClientIDMismatch = errors.New("hooks: client id does not match token")
	// ErrSessionTakeover: the client id is bound to another identity
	// (CONNACK 0x87).
	ErrSessionTakeover = errors.New("hooks: client id is bound to another identity")
	// ErrWillNotAllowed: the CONNECT's Will topic is outside the publish
	// grants (CONNACK 0x87). mochi publishes Wills without an ACL check.
	ErrWillNotAllowed = errors.New("hooks: will topic not allowed")
	// ErrReauthMethod: an AUTH packet without reason 0x19 and method
	// AuthMethod (DISCONNECT 0x8C), or a CONNECT naming another
	// authentication method (CONNACK 0x8C).
	ErrReauthMethod = errors.New("hooks: re-authentication needs method " + AuthMethod)
	// ErrReauthIdentity: a re-authentication token for another identity or
	// client id (DISCONNECT 0x87).
	ErrReauthIdentity = errors.New("hooks: re-authentication token is for another identity or client id")
)
