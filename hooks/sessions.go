package hooks

import (
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/courier-mqtt/courier/auth"
)

// session is the authenticated identity bound to one client id. It lives
// while the MQTT session lives (also while the client is offline), so
// deliveries to an offline persistent session are authorized from it.
type session struct {
	identity string
	cl       *mqtt.Client // the connection that authenticated last
	perms    atomic.Pointer[auth.Permissions]

	// guarded by sessions.mu
	timer   *time.Timer
	expires time.Time
}

// sessions maps client ids to sessions. Reads (one per ACL check, per
// delivered message) are lock-free; writes take mu. An optional store keeps
// the bindings across restarts.
type sessions struct {
	mu    sync.Mutex
	m     sync.Map // client id -> *session
	store IdentityStore
	log   *slog.Logger
}

func (ss *sessions) get(id string) *session {
	v, ok := ss.m.Load(id)
	if !ok {
		return nil
	}
	return v.(*session)
}

// lookup is get, falling back to the store for a client id with no binding
// in memory (a session restored after a restart). cl becomes the session's
// connection, so the owner's next CONNECT replaces it as usual.
func (ss *sessions) lookup(cl *mqtt.Client) *session {
	if s := ss.get(cl.ID); s != nil || ss.store == nil {
		return s
	}
	rec, ok, err := ss.store.LoadIdentity(cl.ID)
	if err != nil {
		ss.log.Error("load identity failed", "client_id", cl.ID, "err", err)
		return nil
	}
	if !ok {
		return nil
	}
	s := newSession(cl, rec)
	v, _ := ss.m.LoadOrStore(cl.ID, s)
	return v.(*session)
}

func newSession(cl *mqtt.Client, rec IdentityRecord) *session {
	s := &session{identity: rec.Identity, cl: cl}
	s.perms.Store(auth.Compile(rec.Grants, rec.Admin, rec.Identity, cl.ID))
	return s
}

func (ss *sessions) save(id string, rec IdentityRecord) {
	if ss.store == nil {
		return
	}
	if err := ss.store.SaveIdentity(id, rec); err != nil {
		ss.log.Error("save identity failed", "client_id", id, "err", err)
	}
}

func (ss *sessions) forget(id string) {
	ss.m.Delete(id)
	if ss.store == nil {
		return
	}
	if err := ss.store.DeleteIdentity(id); err != nil {
		ss.log.Error("delete identity failed", "client_id", id, "err", err)
	}
}

// bind binds client id cl.ID to identity for the connection cl, unless the
// id is held by another identity (session takeover across identities is
// refused). It replaces the session of the same identity.
//
// mochi resends the old session's inflight messages to the new connection
// without an ACL check; the new permissions may be narrower (a fresh token),
// so outbound PUBLISHes they no longer allow are dropped from the old
// connection's inflight before mochi copies it.
func (ss *sessions) bind(cl *mqtt.Client, rec IdentityRecord) (*session, bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	old := ss.lookup(cl)
	if old != nil {
		if old.identity != rec.Identity {
			return nil, false
		}
		if old.timer != nil {
			old.timer.Stop()
		}
	}
	s := newSession(cl, rec)
	ss.m.Store(cl.ID, s)
	ss.save(cl.ID, rec)
	if old != nil && old.cl != nil && old.cl != cl {
		dropUnauthorizedInflight(old.cl, s.perms.Load())
	}
	return s, true
}

// rebind replaces the grants of a live session (re-authentication).
func (ss *sessions) rebind(s *session, rec IdentityRecord) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s.perms.Store(auth.Compile(rec.Grants, rec.Admin, rec.Identity, s.cl.ID))
	if ss.get(s.cl.ID) == s {
		ss.save(s.cl.ID, rec)
	}
}

// dropUnauthorizedInflight removes queued outbound PUBLISHes that perms do
// not allow. (mochi's inflight counter in $SYS is not adjusted.)
func dropUnauthorizedInflight(cl *mqtt.Client, perms *auth.Permissions) {
	if cl.State.Inflight == nil {
		return
	}
	for _, pk := range cl.State.Inflight.GetAll(false) {
		if pk.FixedHeader.Type == packets.Publish && !perms.CanReceive(pk.TopicName) {
			cl.State.Inflight.Delete(pk.PacketID)
		}
	}
}

// current returns the session if cl is the connection that holds it.
func (ss *sessions) current(cl *mqtt.Client) *session {
	if s := ss.get(cl.ID); s != nil && s.cl == cl {
		return s
	}
	return nil
}

// disconnected handles mochi's OnDisconnect: the timer stops; the session is
// forgotten only when the MQTT session ends with the connection.
func (ss *sessions) disconnected(cl *mqtt.Client, expire bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.get(cl.ID)
	if s == nil || s.cl != cl {
		return // taken over, or never authenticated here
	}
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
	}
	if expire {
		ss.forget(cl.ID)
	}
}

// expired handles mochi's OnClientExpired.
func (ss *sessions) expired(cl *mqtt.Client) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if s := ss.lookup(cl); s != nil && s.cl == cl {
		ss.forget(cl.ID)
	}
}

// stopAll stops every timer (hook Stop).
func (ss *sessions) stopAll() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.m.Range(func(_, v any) bool {
		s := v.(*session)
		if s.timer != nil {
			s.timer.Stop()
			s.timer = nil
		}
		return true
	})
}

// aclCheck is the shared OnACLCheck. mochi calls it with write=false both for
// SUBSCRIBE filters and for every delivered message's topic name; a filter
// with wildcards or a $share prefix gets the containment check, a plain name
// the (allocation-free) match, which for a wildcard-free filter is the same
// answer.
func (ss *sessions) aclCheck(cl *mqtt.Client, topic string, write bool, deny OnDeniedFunc) bool {
	s := ss.lookup(cl)
	var p *auth.Permissions
	if s != nil {
		p = s.perms.Load()
	}
	var ok bool
	op := OpRead
	switch {
	case write:
		op = OpPublish
		ok = p.CanPublish(topic)
	case strings.ContainsAny(topic, "+#") || strings.HasPrefix(topic, "$share/"):
		op = OpSubscribe
		ok = p.CanSubscribe(topic)
	default:
		ok = p.CanReceive(topic)
	}
	if !ok && deny != nil {
		d := Denial{Op: op, ClientID: cl.ID, Remote: cl.Net.Remote, Topic: topic, Err: auth.ErrUnauthenticated}
		if s != nil {
			d.Identity = s.identity
			d.Err = nil
		}
		if op != OpRead {
			d.Reason = packets.ErrNotAuthorized.Code
		}
		deny(d)
	}
	return ok
}
