package broker

import (
	"time"

	"github.com/mochi-mqtt/server/v2/packets"
)

// Limits.MaxMessageExpiry is a maximum age: messages older than it are
// removed. mochi implements it by capping every message's expiry, so a
// message published without a Message Expiry Interval is forwarded with
// one, and a longer interval is forwarded as the maximum: both wrong
// [MQTT-3.3.2-6]. mochi still removes messages at the maximum age; the
// outbound hook only restores the interval the message was published with.
//
// mochi copies a PUBLISH for every subscriber and for the retained store,
// keeping only its own fields, so the published interval travels in a field
// mochi never uses on a PUBLISH: the Will properties of its CONNECT part.
// The store does not keep it: a message restored after a restart is
// forwarded as mochi would.

// markOwnExpiry records the interval a message was published with; the
// outbound hook calls it from OnPublish when a maximum age is configured.
func markOwnExpiry(pk packets.Packet) packets.Packet {
	w := &pk.Connect.WillProperties
	w.MessageExpiryInterval = pk.Properties.MessageExpiryInterval
	w.SessionExpiryIntervalFlag = true // marks w as carrying the published interval
	return pk
}

// ownExpiry puts the published interval, less the time waited, back on an
// outgoing PUBLISH.
func (h *outboundHook) ownExpiry(pk packets.Packet) packets.Packet {
	w := pk.Connect.WillProperties
	if !w.SessionExpiryIntervalFlag || w.WillDelayInterval > 0 {
		return pk
	}
	switch own := int64(w.MessageExpiryInterval); {
	case own == 0:
		pk.Properties.MessageExpiryInterval = 0
	case own > h.maxAge:
		pk.Properties.MessageExpiryInterval = uint32(max(1, pk.Created+own-time.Now().Unix()))
	}
	return pk
}
