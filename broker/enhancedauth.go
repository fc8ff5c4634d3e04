package broker

import (
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// MQTT 5 enhanced authentication without an authentication hook that
// understands it (anonymous access, or a users file): mochi accepts a
// CONNECT naming any Authentication Method, and ignores AUTH packets.

// checkAuthMethod refuses a CONNECT whose Authentication Method the broker
// does not support with CONNACK 0x8C (Bad authentication method) and closes
// the connection. [MQTT-4.12.0-1] With broker tokens the token hook answers
// instead (it supports its own method); a hook supplied in code decides for
// itself.
func (h *lifecycleHook) checkAuthMethod(cl *mqtt.Client, pk packets.Packet) error {
	if h.enhancedAuth || cl.Properties.ProtocolVersion != 5 || pk.Properties.AuthenticationMethod == "" {
		return nil
	}
	return refuseConnack(cl, packets.ErrBadAuthenticationMethod)
}

// OnAuthPacket is provided only when no authentication hook supports
// enhanced authentication. A client may send AUTH only after naming an
// Authentication Method in CONNECT [MQTT-4.12.0-7], which this broker then
// refuses: any AUTH packet is a protocol error, answered (MQTT 5) with
// DISCONNECT 0x82 and the connection closed. [MQTT-4.13.1-1]
func (h *lifecycleHook) OnAuthPacket(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	return pk, packets.ErrProtocolViolation
}
