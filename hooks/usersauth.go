package hooks

import (
	"bytes"
	"log/slog"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/courier-mqtt/courier/auth"
)

// UsersAuthOptions configure NewUsersAuth.
type UsersAuthOptions struct {
	// Users holds the bcrypt users and their grants. Required.
	Users *auth.Users
	// Logger gets one line per denial (never passwords). Default: discard.
	Logger *slog.Logger
	// OnDenied, if set, is told about every refusal.
	OnDenied OnDeniedFunc
	// Identities, if set, keeps client id bindings across restarts.
	Identities IdentityStore
}

// UsersAuth is the mochi hook for a users file: CONNECT username and password
// are checked against bcrypt hashes (CONNACK 0x86, 3.1.1 return code 4, when
// wrong), a client id already bound to another user is refused (0x87, 3.1.1
// return code 5), and the user's grants authorize publish, subscribe
// (filter containment) and delivery, exactly as for tokens. bcrypt costs
// tens of milliseconds of CPU per CONNECT by design.
//
// mochi ORs auth hooks: never register an allow-all hook beside this one,
// and register either this hook or TokenAuth, not both (each refuses
// CONNECTs it cannot verify). It is safe for concurrent use.
type UsersAuth struct {
	mqtt.HookBase
	users    *auth.Users
	log      *slog.Logger
	onDenied OnDeniedFunc
	ss       sessions
}

// NewUsersAuth returns the users-file auth hook.
func NewUsersAuth(opts UsersAuthOptions) (*UsersAuth, error) {
	if opts.Users == nil {
		return nil, ErrNoUsers
	}
	l := opts.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	l = l.With("component", "hooks.usersauth")
	return &UsersAuth{users: opts.Users, log: l, onDenied: opts.OnDenied, ss: sessions{store: opts.Identities, log: l}}, nil
}

// ID implements mqtt.Hook.
func (h *UsersAuth) ID() string { return "courier-users-auth" }

// Provides implements mqtt.Hook.
func (h *UsersAuth) Provides(b byte) bool {
	return bytes.Contains([]byte{
		mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck,
		mqtt.OnDisconnect, mqtt.OnClientExpired, mqtt.OnPacketRead,
	}, []byte{b})
}

// OnConnect checks the password and binds the client id to the user, or
// sends the refusing CONNACK itself and returns an error.
func (h *UsersAuth) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	code, identity, err := bindUser(&h.ss, h.users, cl, pk)
	if err != nil {
		return h.refuse(cl, identity, code, err)
	}
	return nil
}

// bindUser checks a CONNECT's username and password and binds the client id
// to the user. On failure it returns the CONNACK code to refuse with.
func bindUser(ss *sessions, users *auth.Users, cl *mqtt.Client, pk packets.Packet) (packets.Code, string, error) {
	name := string(pk.Connect.Username)
	u, err := users.Authenticate(name, string(pk.Connect.Password))
	if err != nil {
		return packets.ErrBadUsernameOrPassword, name, err
	}
	if !willAllowed(pk, u.Permissions(cl.ID)) {
		return packets.ErrNotAuthorized, u.Name, ErrWillNotAllowed
	}
	if _, ok := ss.bind(cl, IdentityRecord{Identity: u.Name, Grants: u.Grants, Admin: u.Admin}); !ok {
		return packets.ErrNotAuthorized, u.Name, ErrSessionTakeover
	}
	return packets.CodeSuccess, u.Name, nil
}

func (h *UsersAuth) refuse(cl *mqtt.Client, identity string, code packets.Code, cause error) error {
	h.log.Info("connect refused", "client_id", cl.ID, "remote", cl.Net.Remote, "reason", code.Code, "err", cause)
	if h.onDenied != nil {
		h.onDenied(Denial{Op: OpConnect, ClientID: cl.ID, Identity: identity, Remote: cl.Net.Remote, Reason: code.Code, Err: cause})
	}
	return refuseConnect(cl, code)
}

// OnConnectAuthenticate accepts exactly the connections OnConnect bound.
func (h *UsersAuth) OnConnectAuthenticate(cl *mqtt.Client, _ packets.Packet) bool {
	return h.ss.current(cl) != nil
}

// OnACLCheck authorizes from the user's grants.
func (h *UsersAuth) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	return h.ss.aclCheck(cl, topic, write, h.onDenied)
}

// OnDisconnect forgets the user when the session ends with the connection.
func (h *UsersAuth) OnDisconnect(cl *mqtt.Client, _ error, expire bool) {
	h.ss.disconnected(cl, expire)
}

// OnClientExpired forgets the user of an expired session.
func (h *UsersAuth) OnClientExpired(cl *mqtt.Client) { h.ss.expired(cl) }
