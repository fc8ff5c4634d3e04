package broker

import (
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// emptyWillPayload stands in for a zero-length Will Payload while mochi
// validates the CONNECT: mochi refuses a Will whose payload is empty (CONNACK
// 0x82, even to a 3.1.1 client), though MQTT allows zero-length Will
// Payloads (3.1.3.4 in MQTT 5, 3.1.3.3 in 3.1.1). The validating layer has
// already checked that the payload field is present.
var emptyWillPayload = []byte{0}

// stubEmptyWill runs in OnPacketRead, before mochi copies the Will into
// the client and validates the CONNECT.
func stubEmptyWill(pk packets.Packet) packets.Packet {
	if pk.Connect.WillFlag && len(pk.Connect.WillPayload) == 0 {
		pk.Connect.WillPayload = emptyWillPayload
	}
	return pk
}

// restoreEmptyWill runs in OnConnect, after mochi's validation: the client's
// Will gets its real, empty payload back.
func restoreEmptyWill(cl *mqtt.Client) {
	if p := cl.Properties.Will.Payload; len(p) == 1 && &p[0] == &emptyWillPayload[0] {
		cl.Properties.Will.Payload = []byte{}
	}
}
