package hooks

import (
	"bytes"
	"errors"
	"log/slog"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/courier-mqtt/courier/auth"
)

// AuthMethod is the MQTT 5 Authentication Method of a re-authentication AUTH
// packet: its Authentication Data is a fresh token.
const AuthMethod = "courier-token"

// TokenAuthOptions configure NewTokenAuth.
type TokenAuthOptions struct {
	// Verifier checks tokens. Required. Its leeway also delays the
	// disconnect of a client whose token expires.
	Verifier *auth.Verifier
	// Logger gets one line per denial (never tokens). Default: discard.
	Logger *slog.Logger
	// OnDenied, if set, is told about every refusal and expiry disconnect.
	OnDenied OnDeniedFunc
}

// TokenAuth is the mochi hook that authenticates CONNECT with a broker token
// (the password) and authorizes publish, subscribe and delivery from the
// token's claims.
//
//   - CONNECT: the token must verify, its cid must equal the CONNECT client id,
//     a non-empty username must equal its sub, and the client id must not be
//     bound to another identity (no session takeover across identities).
//     Refusals answer CONNACK 0x86 (bad credentials: malformed, forged, unknown
//     key, expired, not yet valid, username mismatch) or 0x87 (not authorized:
//     client id mismatch, takeover); MQTT 3.1.1 clients get return codes 4
//     and 5.
//   - ACL: publish must match a pub grant, a subscribe filter must be contained
//     in a sub grant, every delivered message must match a sub grant. $SYS
//     needs admin. Permissions are compiled once per connection.
//   - Expiry: when the token expires (plus leeway) the client is disconnected
//     (MQTT 5: DISCONNECT 0xA0 maximum connect time), unless it re-authenticated
//     with an AUTH packet (reason 0x19, method AuthMethod, data = a fresh token
//     for the same sub and cid), which is answered AUTH 0x00 or DISCONNECT 0x87.
//
// mochi ORs auth hooks: never register an allow-all hook beside this one.
// It is safe for concurrent use.
type TokenAuth struct {
	mqtt.HookBase
	v        *auth.Verifier
	log      *slog.Logger
	onDenied OnDeniedFunc
	ss       sessions
}

// NewTokenAuth returns the token auth hook.
func NewTokenAuth(opts TokenAuthOptions) (*TokenAuth, error) {
	if opts.Verifier == nil {
		return nil, ErrNoVerifier
	}
	l := opts.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &TokenAuth{v: opts.Verifier, log: l.With("component", "hooks.tokenauth"), onDenied: opts.OnDenied}, nil
}

// ID implements mqtt.Hook.
func (h *TokenAuth) ID() string { return "courier-token-auth" }

// Provides implements mqtt.Hook.
func (h *TokenAuth) Provides(b byte) bool {
	return bytes.Contains([]byte{
		mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck,
		mqtt.OnDisconnect, mqtt.OnClientExpired, mqtt.OnAuthPacket,
	}, []byte{b})
}

// Stop implements mqtt.Hook: it stops every expiry timer.
func (h *TokenAuth) Stop() error {
	h.ss.stopAll()
	return nil
}

// OnConnect verifies the token and binds the client id, or sends the refusing
// CONNACK itself (mochi alone would always send 0x86) and returns an error.
func (h *TokenAuth) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	now := time.Now()
	claims, err := h.v.Verify(string(pk.Connect.Password), now)
	if err != nil {
		return h.refuse(cl, "", packets.ErrBadUsernameOrPassword, err)
	}
	if u := string(pk.Connect.Username); u != "" && u != claims.Subject {
		return h.refuse(cl, claims.Subject, packets.ErrBadUsernameOrPassword, errUsernameMismatch)
	}
	if pk.Connect.ClientIdentifier != claims.ClientID || cl.ID != claims.ClientID {
		return h.refuse(cl, claims.Subject, packets.ErrNotAuthorized, errClientIDMismatch)
	}
	s, ok := h.ss.bind(cl, claims.Subject, claims.Compile())
	if !ok {
		return h.refuse(cl, claims.Subject, packets.ErrNotAuthorized, errTakeover)
	}
	h.armExpiry(s, cl, claims.ExpiresAt)
	return nil
}

var (
	errUsernameMismatch = errors.New("hooks: username does not match token subject")
	errClientIDMismatch = errors.New("hooks: client id does not match token")
	errTakeover         = errors.New("hooks: client id is bound to another identity")
	errReauthMethod     = errors.New("hooks: re-authentication needs method " + AuthMethod)
	errReauthIdentity   = errors.New("hooks: re-authentication token is for another identity or client id")
)

func (h *TokenAuth) refuse(cl *mqtt.Client, identity string, code packets.Code, cause error) error {
	h.log.Info("connect refused", "client_id", cl.ID, "remote", cl.Net.Remote, "reason", code.Code, "err", cause)
	if h.onDenied != nil {
		h.onDenied(Denial{Op: OpConnect, ClientID: cl.ID, Identity: identity, Remote: cl.Net.Remote, Reason: code.Code, Err: cause})
	}
	return refuseConnect(cl, code)
}

// armExpiry (re)starts the session's expiry timer.
func (h *TokenAuth) armExpiry(s *session, cl *mqtt.Client, exp time.Time) {
	deadline := exp.Add(h.v.Leeway())
	h.ss.mu.Lock()
	defer h.ss.mu.Unlock()
	if s.timer != nil {
		s.timer.Stop()
	}
	s.expires = deadline
	s.timer = time.AfterFunc(time.Until(deadline), func() { h.expire(s, cl, deadline) })
}

// expire disconnects cl if its session still ends at deadline (a
// re-authentication moves the deadline and restarts the timer).
func (h *TokenAuth) expire(s *session, cl *mqtt.Client, deadline time.Time) {
	h.ss.mu.Lock()
	stale := h.ss.get(cl.ID) != s || s.cl != cl || !s.expires.Equal(deadline)
	if !stale {
		s.timer = nil
	}
	h.ss.mu.Unlock()
	if stale || cl.Closed() {
		return
	}
	h.log.Info("token expired, disconnecting", "client_id", cl.ID, "remote", cl.Net.Remote)
	if h.onDenied != nil {
		h.onDenied(Denial{Op: OpExpired, ClientID: cl.ID, Identity: s.identity, Remote: cl.Net.Remote,
			Reason: packets.ErrMaxConnectTime.Code, Err: auth.ErrTokenExpired})
	}
	disconnect(cl, packets.ErrMaxConnectTime)
}

// OnConnectAuthenticate accepts exactly the connections OnConnect bound.
func (h *TokenAuth) OnConnectAuthenticate(cl *mqtt.Client, _ packets.Packet) bool {
	return h.ss.current(cl) != nil
}

// OnACLCheck authorizes from the claims of the session bound to the client
// id (also while the client is offline).
func (h *TokenAuth) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	return h.ss.aclCheck(cl, topic, write, h.onDenied)
}

// OnDisconnect stops the expiry timer and forgets the identity when the
// session ends with the connection.
func (h *TokenAuth) OnDisconnect(cl *mqtt.Client, _ error, expire bool) {
	h.ss.disconnected(cl, expire)
}

// OnClientExpired forgets the identity of an expired session.
func (h *TokenAuth) OnClientExpired(cl *mqtt.Client) { h.ss.expired(cl) }

// OnAuthPacket handles MQTT 5 re-authentication: AUTH reason 0x19 with
// method AuthMethod and a fresh token as data. On success the claims and the
// expiry are replaced and AUTH 0x00 is sent; otherwise the returned code
// makes mochi send DISCONNECT with it. [MQTT-4.12.1-1]
func (h *TokenAuth) OnAuthPacket(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	s := h.ss.current(cl)
	if pk.ReasonCode != packets.CodeReAuthenticate.Code || pk.Properties.AuthenticationMethod != AuthMethod {
		h.denyReauth(cl, s, packets.ErrBadAuthenticationMethod, errReauthMethod)
		return pk, packets.ErrBadAuthenticationMethod
	}
	claims, err := h.v.Verify(string(pk.Properties.AuthenticationData), time.Now())
	if err != nil {
		h.denyReauth(cl, s, packets.ErrNotAuthorized, err)
		return pk, packets.ErrNotAuthorized
	}
	if s == nil || claims.Subject != s.identity || claims.ClientID != cl.ID {
		h.denyReauth(cl, s, packets.ErrNotAuthorized, errReauthIdentity)
		return pk, packets.ErrNotAuthorized
	}
	s.perms.Store(claims.Compile())
	h.armExpiry(s, cl, claims.ExpiresAt)
	err = cl.WritePacket(packets.Packet{
		FixedHeader: packets.FixedHeader{Type: packets.Auth},
		ReasonCode:  packets.CodeSuccess.Code,
		Properties:  packets.Properties{AuthenticationMethod: AuthMethod},
	})
	return pk, err
}

func (h *TokenAuth) denyReauth(cl *mqtt.Client, s *session, code packets.Code, cause error) {
	h.log.Info("re-authentication refused", "client_id", cl.ID, "remote", cl.Net.Remote, "err", cause)
	if h.onDenied != nil {
		d := Denial{Op: OpReauth, ClientID: cl.ID, Remote: cl.Net.Remote, Reason: code.Code, Err: cause}
		if s != nil {
			d.Identity = s.identity
		}
		h.onDenied(d)
	}
}
