package store

import "github.com/mochi-mqtt/server/v2/packets"

// The store marks a PUBLISH it has written ahead with its sequence number so
// that later hooks on the same publish (OnSelectSubscribers, OnQosPublish,
// OnPublished) can find the write-ahead records. mochi has no field for
// hook data, so the mark rides in Packet.Filters, which mochi copies with
// the packet and never encodes for a PUBLISH.
const tagFilter = "\x00courier/seq"

// tagPacket marks pk with seq; the mark is stored in the fanout of the
// publish (one allocation less per message). The packet's copies share it,
// keeping the fanout's own fields (not its targets, dropped when the publish
// ends) as long as they live.
func (f *fanout) tagPacket(pk *packets.Packet, seq uint64) {
	f.tag[0] = packets.Subscription{Filter: tagFilter, Identifier: int(seq)}
	pk.Filters = f.tag[:]
}

func packetTag(pk packets.Packet) (uint64, bool) {
	if len(pk.Filters) == 1 && pk.Filters[0].Filter == tagFilter && pk.Filters[0].Identifier > 0 {
		return uint64(pk.Filters[0].Identifier), true
	}
	return 0, false
}
