package hooks

import (
	"bytes"
	"log/slog"
	"sync/atomic"
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
	// Identities, if set, keeps client id bindings across restarts.
	Identities IdentityStore
	// Users, if set, is the fallback for CONNECTs whose password is not a
	// JWT: they are checked against the users file (bcrypt) instead, so
	// devices with passwords and apps with tokens can share one broker.
	Users *auth.Users
}

// TokenAuth is the mochi hook that authenticates CONNECT with a broker token
// (the password) and authorizes publish, subscribe and delivery from the
// token's claims.
//
//   - CONNECT: the token is the password (or, for MQTT 5 enhanced
//     authentication with method AuthMethod, the Authentication Data; the
//     CONNACK then names the method; another method gets 0x8C). It must verify, its cid must equal the CONNECT client id,
//     a non-empty username must equal its sub, and the client id must not be
//     bound to another identity (no session takeover across identities).
//     Refusals answer CONNACK 0x86 (bad credentials: malformed, forged, unknown
//     key, expired, not yet valid, username mismatch) or 0x87 (not authorized:
//     client id mismatch, takeover, a Will topic the token may not publish);
//     MQTT 3.1.1 clients get return codes 4 and 5.
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
	users    *auth.Users
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
	l = l.With("component", "hooks.tokenauth")
	return &TokenAuth{v: opts.Verifier, users: opts.Users, log: l, onDenied: opts.OnDenied, ss: sessions{store: opts.Identities, log: l}}, nil
}

// ID implements mqtt.Hook.
func (h *TokenAuth) ID() string { return "courier-token-auth" }

// Provides implements mqtt.Hook.
func (h *TokenAuth) Provides(b byte) bool {
	return bytes.Contains([]byte{
		mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck,
		mqtt.OnDisconnect, mqtt.OnClientExpired, mqtt.OnAuthPacket, mqtt.OnPacketRead,
		mqtt.OnPacketEncode,
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
	token := pk.Connect.Password
	switch m := pk.Properties.AuthenticationMethod; {
	case m == AuthMethod && len(token) == 0:
		token = pk.Properties.AuthenticationData // MQTT 5 enhanced auth, one step
	case m != "" && m != AuthMethod:
		return h.refuse(cl, "", packets.ErrBadAuthenticationMethod, ErrReauthMethod)
	case m == "" && h.users != nil && !looksLikeJWT(token):
		return h.connectUser(cl, pk)
	}
	now := time.Now()
	claims, err := h.v.Verify(string(token), now)
	if err != nil {
		return h.refuse(cl, "", packets.ErrBadUsernameOrPassword, err)
	}
	if u := string(pk.Connect.Username); u != "" && u != claims.Subject {
		return h.refuse(cl, claims.Subject, packets.ErrBadUsernameOrPassword, ErrUsernameMismatch)
	}
	if pk.Connect.ClientIdentifier != claims.ClientID || cl.ID != claims.ClientID {
		return h.refuse(cl, claims.Subject, packets.ErrNotAuthorized, ErrClientIDMismatch)
	}
	if !willAllowed(pk, claims.Compile()) {
		return h.refuse(cl, claims.Subject, packets.ErrNotAuthorized, ErrWillNotAllowed)
	}
	s, ok := h.ss.bind(cl, IdentityRecord{Identity: claims.Subject, Grants: claims.Perms, Admin: claims.Admin})
	if !ok {
		return h.refuse(cl, claims.Subject, packets.ErrNotAuthorized, ErrSessionTakeover)
	}
	h.armExpiry(s, cl, claims.ExpiresAt)
	return nil
}

// connectUser is the users-file fallback: no token, so no expiry.
func (h *TokenAuth) connectUser(cl *mqtt.Client, pk packets.Packet) error {
	code, identity, err := bindUser(&h.ss, h.users, cl, pk)
	if err != nil {
		return h.refuse(cl, identity, code, err)
	}
	return nil
}

// willAllowed reports whether the CONNECT's Will may be published under p.
// mochi publishes (and retains) a Will without any ACL check, so a client
// could otherwise inject a message on any topic by disconnecting.
func willAllowed(pk packets.Packet, p *auth.Permissions) bool {
	return !pk.Connect.WillFlag || p.CanPublish(pk.Connect.WillTopic)
}

// looksLikeJWT reports whether p has the shape of a compact JWS: three
// non-empty base64url parts.
func looksLikeJWT(p []byte) bool {
	parts := 0
	for _, c := range bytes.Split(p, []byte(".")) {
		if len(c) == 0 {
			return false
		}
		parts++
	}
	return parts == 3
}

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

// OnPacketEncode adds the Authentication Method to a successful CONNACK for
// a client that named it in CONNECT. [MQTT-4.12.0-5]
func (h *TokenAuth) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if pk.FixedHeader.Type == packets.Connack && pk.ReasonCode == packets.CodeSuccess.Code &&
		cl.Properties.Props.AuthenticationMethod == AuthMethod {
		pk.Properties.AuthenticationMethod = AuthMethod
	}
	return pk
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
		h.denyReauth(cl, s, packets.ErrBadAuthenticationMethod, ErrReauthMethod)
		return pk, packets.ErrBadAuthenticationMethod
	}
	claims, err := h.v.Verify(string(pk.Properties.AuthenticationData), time.Now())
	if err != nil {
		h.denyReauth(cl, s, packets.ErrNotAuthorized, err)
		return pk, packets.ErrNotAuthorized
	}
	if s == nil || claims.Subject != s.identity || claims.ClientID != cl.ID {
		h.denyReauth(cl, s, packets.ErrNotAuthorized, ErrReauthIdentity)
		return pk, packets.ErrNotAuthorized
	}
	h.ss.rebind(s, IdentityRecord{Identity: claims.Subject, Grants: claims.Perms, Admin: claims.Admin})
	if atomic.LoadUint32(&cl.Properties.Will.Flag) == 1 && !s.perms.Load().CanPublish(cl.Properties.Will.TopicName) {
		atomic.StoreUint32(&cl.Properties.Will.Flag, 0) // the new token may not publish it
	}
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
