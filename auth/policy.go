package auth

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

// Policy decides what the token API issues to one identity.
type Policy struct {
	// ClientID is the client id pattern. %u stands for the identity; a single
	// '*' stands for 1-64 characters of [A-Za-z0-9_.-] (generated randomly when
	// the caller asks for none). Examples: "%u-*" (the default), "%u" (one
	// exact client id), "device-*".
	ClientID string `json:"client_id" yaml:"client_id"`
	// CleanSession is returned to the client as cleanSession.
	CleanSession bool `json:"clean_session" yaml:"clean_session"`
	// KeepAlive is returned to the client as keepAlive (whole seconds).
	KeepAlive time.Duration `json:"keep_alive" yaml:"keep_alive"`
	// TokenTTL is the token lifetime.
	TokenTTL time.Duration `json:"token_ttl" yaml:"token_ttl"`
	// Publish and Subscribe are the topic grants, with %u and %c templates.
	Publish   []string `json:"publish" yaml:"publish"`
	Subscribe []string `json:"subscribe" yaml:"subscribe"`
	// Admin allows $SYS.
	Admin bool `json:"admin" yaml:"admin"`
}

// Policy defaults applied by withDefaults.
const (
	DefaultClientIDPattern = "%u-*"
	DefaultKeepAlive       = 60 * time.Second
	DefaultTokenTTL        = time.Hour
)

// maxStar is the longest run a '*' in a client id pattern may stand for.
const maxStar = 64

func (p Policy) withDefaults() Policy {
	if p.ClientID == "" {
		p.ClientID = DefaultClientIDPattern
	}
	if p.KeepAlive == 0 {
		p.KeepAlive = DefaultKeepAlive
	}
	if p.TokenTTL == 0 {
		p.TokenTTL = DefaultTokenTTL
	}
	return p
}

// Grants returns the policy's topic grants.
func (p Policy) Grants() Grants { return Grants{Pub: p.Publish, Sub: p.Subscribe} }

// Validate reports every problem with the policy.
func (p Policy) Validate() error {
	var errs []string
	if strings.Count(p.ClientID, "*") > 1 {
		errs = append(errs, fmt.Sprintf("client_id pattern %q has more than one '*'", p.ClientID))
	}
	if x := strings.NewReplacer("%u", "u", "*", "x").Replace(p.ClientID); x != "" && !validClientIDChars(x) {
		errs = append(errs, fmt.Sprintf("client_id pattern %q has characters outside [A-Za-z0-9_.-]", p.ClientID))
	}
	if p.KeepAlive < 0 || p.KeepAlive > 65535*time.Second {
		errs = append(errs, fmt.Sprintf("keep_alive %s out of range 0-65535s", p.KeepAlive))
	}
	if p.TokenTTL < 0 {
		errs = append(errs, fmt.Sprintf("token_ttl %s is negative", p.TokenTTL))
	}
	if err := p.Grants().Validate(); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrInvalidConfig, strings.Join(errs, "; "))
}

// ClientIDFor returns the client id to issue for identity: requested if it
// matches the pattern, or a generated one when requested is empty.
func (p Policy) ClientIDFor(identity, requested string) (string, error) {
	if !validIdentity(identity) {
		return "", ErrInvalidIdentity
	}
	pattern := strings.ReplaceAll(p.withDefaults().ClientID, "%u", identity)
	prefix, suffix, star := strings.Cut(pattern, "*")
	if requested == "" {
		if !star {
			return pattern, nil
		}
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("generate client id: %w", err)
		}
		return prefix + hex.EncodeToString(b[:]) + suffix, nil
	}
	if !star {
		if requested != pattern {
			return "", ErrClientIDNotAllowed
		}
		return requested, nil
	}
	if len(requested) <= len(prefix)+len(suffix) ||
		!strings.HasPrefix(requested, prefix) || !strings.HasSuffix(requested, suffix) {
		return "", ErrClientIDNotAllowed
	}
	mid := requested[len(prefix) : len(requested)-len(suffix)]
	if len(mid) > maxStar || !validClientIDChars(mid) {
		return "", ErrClientIDNotAllowed
	}
	return requested, nil
}

// validIdentity: an identity lands in client ids and topic levels.
func validIdentity(id string) bool {
	return id != "" && len(id) <= 128 && safeIdentity(id)
}

// safeIdentity allows e-mail-like identities: printable, no MQTT wildcards,
// no level separator, no spaces.
func safeIdentity(id string) bool {
	for _, r := range id {
		if r <= ' ' || r == 0x7f || r == '+' || r == '#' || r == '/' || r == '*' || r == '%' {
			return false
		}
	}
	return true
}

func validClientIDChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// Policies maps identities to policies, with an optional default.
type Policies struct {
	// Default applies to identities without their own entry; nil means such
	// identities get nothing (ErrNoPolicy).
	Default *Policy `json:"default,omitempty" yaml:"default"`
	// Identities holds per-identity policies.
	Identities map[string]Policy `json:"identities,omitempty" yaml:"identities"`
}

// For returns the policy for identity with defaults applied.
func (ps Policies) For(identity string) (Policy, error) {
	if p, ok := ps.Identities[identity]; ok {
		return p.withDefaults(), nil
	}
	if ps.Default != nil {
		return ps.Default.withDefaults(), nil
	}
	return Policy{}, ErrNoPolicy
}

// Validate reports every problem in every policy.
func (ps Policies) Validate() error {
	var errs []error
	if ps.Default != nil {
		if err := ps.Default.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("policy default: %w", err))
		}
	}
	for id, p := range ps.Identities {
		if !validIdentity(id) {
			errs = append(errs, fmt.Errorf("%w: policy identity %q is not a valid identity", ErrInvalidConfig, id))
		}
		if err := p.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("policy %q: %w", id, err))
		}
	}
	return joinSorted(errs)
}
