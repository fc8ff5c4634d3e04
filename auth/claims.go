package auth

import (
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Claims are the contents of a broker token.
type Claims struct {
	// Subject is the authenticated identity (JWT "sub").
	Subject string
	// ClientID is the one MQTT client id the token is good for ("cid").
	ClientID string
	// IssuedAt, NotBefore and ExpiresAt bound the token's life ("iat", "nbf",
	// "exp"). ExpiresAt is required; the others may be zero.
	IssuedAt  time.Time
	NotBefore time.Time
	ExpiresAt time.Time
	// ID is the unique token id ("jti").
	ID string
	// Perms are the topic grants ("perms"), with %u and %c templates.
	Perms Grants
	// Admin allows $SYS ("admin").
	Admin bool
}

// Compile returns the claims' permissions with templates expanded for the
// claims' own subject and client id.
func (c *Claims) Compile() *Permissions {
	return Compile(c.Perms, c.Admin, c.Subject, c.ClientID)
}

// jwtClaims is the wire form of Claims.
type jwtClaims struct {
	jwt.RegisteredClaims
	CID   string `json:"cid"`
	Perms Grants `json:"perms"`
	Admin bool   `json:"admin,omitempty"`
}

func (c *Claims) toJWT() *jwtClaims {
	jc := &jwtClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   c.Subject,
			ID:        c.ID,
			ExpiresAt: numericDate(c.ExpiresAt),
			IssuedAt:  numericDate(c.IssuedAt),
			NotBefore: numericDate(c.NotBefore),
		},
		CID:   c.ClientID,
		Perms: c.Perms,
		Admin: c.Admin,
	}
	return jc
}

func (jc *jwtClaims) toClaims() *Claims {
	return &Claims{
		Subject:   jc.Subject,
		ClientID:  jc.CID,
		ID:        jc.ID,
		ExpiresAt: timeOf(jc.ExpiresAt),
		IssuedAt:  timeOf(jc.IssuedAt),
		NotBefore: timeOf(jc.NotBefore),
		Perms:     jc.Perms,
		Admin:     jc.Admin,
	}
}

func numericDate(t time.Time) *jwt.NumericDate {
	if t.IsZero() {
		return nil
	}
	return jwt.NewNumericDate(t.Truncate(time.Second))
}

func timeOf(d *jwt.NumericDate) time.Time {
	if d == nil {
		return time.Time{}
	}
	return d.Time
}
