package client

import (
	"io"
	"sync"

	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho/session"
)

// guardedSession works around a data race in paho.golang v0.23's session
// state (paho/session/state/state.go): on a PUBREC it writes the PUBREL to
// its current connection without its lock and without a nil check, while
// ConnectionLost sets that connection to nil. A QoS 2 publisher whose
// connection drops while PUBRECs arrive races and can panic the process with
// a nil pointer dereference.
//
// The guard serialises PUBREC handling with the connection changes and
// drops a PUBREC that arrives when the state has no connection. Nothing is
// lost by dropping it: the PUBLISH is still in the session (paho stores the
// PUBREL stage only when it handles the PUBREC), so it is resent with DUP
// after the reconnect and the server answers with a new PUBREC
// [MQTT-4.4.0-1]. Other packets pass straight through: paho handles them
// under its own lock.
type guardedSession struct {
	session.SessionManager
	mu sync.RWMutex
	up bool // between a successful ConAckReceived and ConnectionLost
}

func guardSession(s session.SessionManager) *guardedSession {
	return &guardedSession{SessionManager: s}
}

func (g *guardedSession) ConAckReceived(w io.Writer, cp *packets.Connect, ca *packets.Connack) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	err := g.SessionManager.ConAckReceived(w, cp, ca)
	g.up = err == nil
	return err
}

func (g *guardedSession) ConnectionLost(dp *packets.Disconnect) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.up = false
	return g.SessionManager.ConnectionLost(dp)
}

func (g *guardedSession) PacketReceived(recv *packets.ControlPacket, pub chan<- *packets.Publish) error {
	if recv.Type != packets.PUBREC {
		return g.SessionManager.PacketReceived(recv, pub)
	}
	// Handling a PUBREC writes only to the connection and the store; it
	// never waits on pub, so holding the read lock cannot stall
	// ConnectionLost behind a slow consumer.
	g.mu.RLock()
	defer g.mu.RUnlock()
	if !g.up {
		return nil
	}
	return g.SessionManager.PacketReceived(recv, pub)
}
