package broker

import (
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// lifecycleHook carries the broker's fixes to mochi's connection and
// session lifecycle: Wills (wills.go), CONNACK and DISCONNECT on the wire
// (connack.go), sessions that end with their connection (session.go) and
// enhanced authentication it does not support (enhancedauth.go). It is
// registered right after the core hook, before the store and
// authentication hooks. Its methods run on mochi's goroutines and are
// cheap; only OnSessionEstablish may wait, briefly and bounded, for the
// end of the session a new connection would otherwise resume wrongly.
type lifecycleHook struct {
	mqtt.HookBase
	b *Broker
	// enhancedAuth is set when an authentication hook may understand MQTT 5
	// Authentication Methods and AUTH packets (broker tokens, or a hook
	// supplied in code); the broker then leaves them to that hook.
	enhancedAuth bool
	wills        *wills
	closing      sync.Map // *mqtt.Client -> bool: read a DISCONNECT; whether its session ends (session.go)
	provides     [256]bool
}

func newLifecycleHook(b *Broker) *lifecycleHook {
	h := &lifecycleHook{
		b:            b,
		enhancedAuth: b.opts.auth || b.opts.verifier != nil || b.cfg.Auth.TokenAuthEnabled(),
		wills:        newWills(),
	}
	for _, p := range []byte{
		mqtt.OnConnect, mqtt.OnSessionEstablish, mqtt.OnSessionEstablished, mqtt.OnDisconnect, mqtt.OnClientExpired,
		mqtt.OnWill, mqtt.OnPacketEncode, mqtt.OnPacketRead,
	} {
		h.provides[p] = true
	}
	if !h.enhancedAuth {
		h.provides[mqtt.OnAuthPacket] = true
	}
	return h
}

func (h *lifecycleHook) ID() string           { return "courier-lifecycle" }
func (h *lifecycleHook) Provides(b byte) bool { return h.provides[b] }
func (h *lifecycleHook) Init(any) error       { return nil }

// Stop drops the Wills still waiting for their delay: mochi calls it while
// the broker shuts down, and a shutdown is not a client failure.
func (h *lifecycleHook) Stop() error {
	h.wills.stop()
	return nil
}

// OnConnect refuses what mochi would accept against the specifications,
// with the CONNACK the specification names, before authentication runs.
func (h *lifecycleHook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	if err := h.checkClientID(cl, pk); err != nil {
		return err
	}
	return h.checkAuthMethod(cl, pk)
}

// OnSessionEstablish runs once a connection is authenticated, before mochi
// takes over an existing session with the same client id.
func (h *lifecycleHook) OnSessionEstablish(cl *mqtt.Client, pk packets.Packet) {
	h.awaitSessionEnd(cl)
	h.willConnecting(cl, pk)
}

// OnSessionEstablished runs once the CONNACK is sent.
func (h *lifecycleHook) OnSessionEstablished(cl *mqtt.Client, pk packets.Packet) {
	h.willEstablished(cl, pk)
}

// OnDisconnect runs after mochi has handled a connection's Will.
func (h *lifecycleHook) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	h.wills.ended(cl)
	h.closing.Delete(cl)
}

// OnClientExpired forgets a client mochi never reported disconnected (its
// CONNACK could not be written).
func (h *lifecycleHook) OnClientExpired(cl *mqtt.Client) {
	h.wills.ended(cl)
}

// OnPacketRead notes a DISCONNECT before mochi acts on it (session.go).
func (h *lifecycleHook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Type == packets.Disconnect {
		h.disconnecting(cl, pk)
	}
	return pk, nil
}

// OnPacketEncode fixes CONNACK and DISCONNECT packets before mochi encodes
// them (connack.go).
func (h *lifecycleHook) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	switch pk.FixedHeader.Type {
	case packets.Connack:
		return h.fixConnack(cl, pk)
	case packets.Disconnect:
		return fixDisconnect(cl, pk)
	}
	return pk
}
