package auth

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"
)

// TokenResponse is the token API's answer, field for field the JSON the
// Courier mobile clients' token API returns, plus expiresAt.
type TokenResponse struct {
	ClientID     string `json:"clientId"`
	Username     string `json:"username"`
	Password     string `json:"password"` // the broker token
	Host         string `json:"host"`
	Port         int    `json:"port"`
	CleanSession bool   `json:"cleanSession"`
	KeepAlive    int    `json:"keepAlive"` // seconds
	ExpiresAt    int64  `json:"expiresAt"` // token expiry, Unix seconds
}

// IssuerOptions configure an Issuer.
type IssuerOptions struct {
	// Keys signs tokens with its active key. Required.
	Keys *KeySet
	// Host and Port are the broker address handed to clients.
	Host string
	Port int
}

// Issuer mints broker tokens. It is safe for concurrent use.
type Issuer struct {
	keys *KeySet
	host string
	port int
}

// NewIssuer returns an Issuer; opts.Keys must have an active key.
func NewIssuer(opts IssuerOptions) (*Issuer, error) {
	if opts.Keys == nil {
		return nil, ErrNoActiveKey
	}
	if _, ok := opts.Keys.Active(); !ok {
		return nil, ErrNoActiveKey
	}
	return &Issuer{keys: opts.Keys, host: opts.Host, port: opts.Port}, nil
}

// Issue returns connect credentials for identity under policy p. requested is
// the client id the caller asked for ("" to let the policy choose); it must
// match the policy's pattern (ErrClientIDNotAllowed). The token is valid from
// now until now+p.TokenTTL and is bound to the returned client id.
func (is *Issuer) Issue(identity string, p Policy, requested string, now time.Time) (*TokenResponse, error) {
	p = p.withDefaults()
	cid, err := p.ClientIDFor(identity, requested)
	if err != nil {
		return nil, err
	}
	jti, err := newJTI()
	if err != nil {
		return nil, err
	}
	now = now.Truncate(time.Second)
	c := &Claims{
		Subject:   identity,
		ClientID:  cid,
		IssuedAt:  now,
		NotBefore: now,
		ExpiresAt: now.Add(p.TokenTTL),
		ID:        jti,
		Perms:     p.Grants(),
		Admin:     p.Admin,
	}
	tok, err := is.keys.Sign(c)
	if err != nil {
		return nil, err
	}
	return &TokenResponse{
		ClientID:     cid,
		Username:     identity,
		Password:     tok,
		Host:         is.host,
		Port:         is.port,
		CleanSession: p.CleanSession,
		KeepAlive:    int(p.KeepAlive / time.Second),
		ExpiresAt:    c.ExpiresAt.Unix(),
	}, nil
}

func newJTI() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate token id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}
