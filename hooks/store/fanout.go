package store

import "github.com/mochi-mqtt/server/v2/packets"

// fanout is the set of subscribers a publish was written ahead for, with
// whether mochi has handed the message to each (OnQosPublish). Most
// publishes reach one or a few subscribers: the targets are a slice,
// searched in order, with their first element inside the fanout itself
// (one allocation for a single subscriber); past fanoutIndexAt targets a
// map indexes them.
type fanout struct {
	targets []fanTarget
	one     [1]fanTarget
	index   map[string]int // client id -> position in targets; nil for few targets
	// shared: Fixes holds a shared-subscription choice for this publish,
	// to forget when it ends.
	shared bool
	tag    [1]packets.Subscription // the packet's mark (tagPacket)
}

type fanTarget struct {
	id   string
	seen bool // OnQosPublish seen
}

// fanoutIndexAt is the number of targets from which a map indexes them.
const fanoutIndexAt = 16

func (f *fanout) add(id string) {
	if f.targets == nil {
		f.targets = f.one[:0]
	}
	f.targets = append(f.targets, fanTarget{id: id})
	switch n := len(f.targets); {
	case n == fanoutIndexAt:
		f.index = make(map[string]int, 2*n)
		for i, t := range f.targets {
			f.index[t.id] = i
		}
	case n > fanoutIndexAt:
		f.index[id] = n - 1
	}
}

// mark records that mochi handed the message to id and reports whether id
// is a target.
func (f *fanout) mark(id string) bool {
	if f.index != nil {
		i, ok := f.index[id]
		if ok {
			f.targets[i].seen = true
		}
		return ok
	}
	for i := range f.targets {
		if f.targets[i].id == id {
			f.targets[i].seen = true
			return true
		}
	}
	return false
}
