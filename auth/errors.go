package auth

import "errors"

// Token verification errors. Verify wraps exactly one of them, so callers can
// map a failure to a protocol reason code with errors.Is.
var (
	// ErrMalformed is returned by Verify when the token is not a well-formed
	// JWT, is too long, or its claims cannot be decoded or lack a required claim
	// (sub, cid, exp).
	ErrMalformed = errors.New("auth: malformed token")
	// ErrUnknownKey is returned by Verify when the token's key id (kid) names
	// no configured key, or the token has no key id.
	ErrUnknownKey = errors.New("auth: unknown key id")
	// ErrAlgorithm is returned by Verify when the token's alg header does not
	// match the algorithm of the key its kid names (this also rejects "none").
	ErrAlgorithm = errors.New("auth: algorithm does not match key")
	// ErrBadSignature is returned by Verify when the signature does not verify
	// with the key named by the token's kid.
	ErrBadSignature = errors.New("auth: bad signature")
	// ErrTokenExpired is returned by Verify when now is past exp plus leeway.
	ErrTokenExpired = errors.New("auth: token expired")
	// ErrTokenNotYetValid is returned by Verify when now is before nbf (or
	// iat) minus leeway.
	ErrTokenNotYetValid = errors.New("auth: token not yet valid")
)

// Key and configuration errors.
var (
	// ErrNoActiveKey is returned when a token must be signed but the key set
	// has no active private key (a verify-only key set).
	ErrNoActiveKey = errors.New("auth: no active signing key")
	// ErrInvalidKey is returned when key material cannot be used: wrong PEM
	// block, wrong key type, HMAC secret shorter than 32 bytes, empty key id.
	ErrInvalidKey = errors.New("auth: invalid key")
	// ErrDuplicateKey is returned by NewKeySet when two keys share a key id.
	ErrDuplicateKey = errors.New("auth: duplicate key id")
	// ErrInvalidConfig is wrapped by every problem Config.Validate reports.
	ErrInvalidConfig = errors.New("auth: invalid config")
)

// Issuing and policy errors.
var (
	// ErrNoPolicy is returned by Policies.For and the Issuer when an identity
	// has no policy and no default policy is configured.
	ErrNoPolicy = errors.New("auth: no policy for identity")
	// ErrClientIDNotAllowed is returned by the Issuer when a requested client
	// id does not match the identity's client id pattern.
	ErrClientIDNotAllowed = errors.New("auth: client id not allowed by policy")
	// ErrInvalidIdentity is returned when an identity is empty or contains
	// characters that cannot appear in a topic level or client id.
	ErrInvalidIdentity = errors.New("auth: invalid identity")
)

// Caller authentication errors (token API and users file).
var (
	// ErrUnauthenticated is returned by an Authenticator when the request
	// carries no credentials or wrong ones, and by Users.Authenticate when the
	// username or password is wrong.
	ErrUnauthenticated = errors.New("auth: unauthenticated")
)
