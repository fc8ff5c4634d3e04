package load

import (
	"encoding/binary"
	"math/bits"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Histograms record microseconds from 1 us to 10 minutes at 3 significant digits.
const (
	histMin    = 1
	histMax    = int64(10 * time.Minute / time.Microsecond)
	histSig    = 3
	histShards = 16
)

// hist is an HDR histogram safe for concurrent use: recorders pick a shard
// (usually their client index), so they rarely contend.
type hist struct {
	shards [histShards]struct {
		mu sync.Mutex
		h  *hdrhistogram.Histogram
	}
}

func newHist() *hist {
	h := &hist{}
	for i := range h.shards {
		h.shards[i].h = hdrhistogram.New(histMin, histMax, histSig)
	}
	return h
}

func (h *hist) record(shard int, d time.Duration) {
	us := max(int64(d/time.Microsecond), histMin)
	s := &h.shards[uint(shard)%histShards]
	s.mu.Lock()
	_ = s.h.RecordValue(min(us, histMax))
	s.mu.Unlock()
}

func (h *hist) merged() *hdrhistogram.Histogram {
	out := hdrhistogram.New(histMin, histMax, histSig)
	for i := range h.shards {
		s := &h.shards[i]
		s.mu.Lock()
		out.Merge(s.h)
		s.mu.Unlock()
	}
	return out
}

// Latency summarises one histogram, in milliseconds.
type Latency struct {
	Count       int64             `json:"count"`
	Min         float64           `json:"min_ms"`
	Mean        float64           `json:"mean_ms"`
	P50         float64           `json:"p50_ms"`
	P90         float64           `json:"p90_ms"`
	P99         float64           `json:"p99_ms"`
	P999        float64           `json:"p999_ms"`
	P9999       float64           `json:"p9999_ms"`
	Max         float64           `json:"max_ms"`
	Percentiles []PercentilePoint `json:"percentiles,omitempty"`
}

// PercentilePoint is one point of a latency-percentile curve.
type PercentilePoint struct {
	Percentile float64 `json:"percentile"`
	Millis     float64 `json:"ms"`
}

// curve are the percentiles kept for charts.
var curve = []float64{0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 99.999, 100}

func (h *hist) summary() *Latency {
	m := h.merged()
	if m.TotalCount() == 0 {
		return nil
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	l := &Latency{
		Count: m.TotalCount(),
		Min:   ms(m.Min()),
		Mean:  m.Mean() / 1000,
		P50:   ms(m.ValueAtQuantile(50)),
		P90:   ms(m.ValueAtQuantile(90)),
		P99:   ms(m.ValueAtQuantile(99)),
		P999:  ms(m.ValueAtQuantile(99.9)),
		P9999: ms(m.ValueAtQuantile(99.99)),
		Max:   ms(m.Max()),
	}
	for _, p := range curve {
		v := m.ValueAtQuantile(p)
		if p == 0 {
			v = m.Min()
		}
		l.Percentiles = append(l.Percentiles, PercentilePoint{Percentile: p, Millis: ms(v)})
	}
	return l
}

// The payload of every loadgen message starts with this header; the rest is padding.
//
//	0  run nonce   uint32 (tells our messages from anyone else's)
//	4  publisher   uint32
//	8  sequence    uint64 (from 0, per publisher)
//	16 intended    int64  (ns since run start: when the schedule wanted it sent)
//	24 sent        int64  (ns since run start: when it was written)
const headerSize = 32

type header struct {
	nonce     uint32
	publisher uint32
	seq       uint64
	intended  int64
	sent      int64
}

func putHeader(b []byte, h header) {
	binary.BigEndian.PutUint32(b[0:], h.nonce)
	binary.BigEndian.PutUint32(b[4:], h.publisher)
	binary.BigEndian.PutUint64(b[8:], h.seq)
	binary.BigEndian.PutUint64(b[16:], uint64(h.intended))
	binary.BigEndian.PutUint64(b[24:], uint64(h.sent))
}

func getHeader(b []byte) (header, bool) {
	if len(b) < headerSize {
		return header{}, false
	}
	return header{
		nonce:     binary.BigEndian.Uint32(b[0:]),
		publisher: binary.BigEndian.Uint32(b[4:]),
		seq:       binary.BigEndian.Uint64(b[8:]),
		intended:  int64(binary.BigEndian.Uint64(b[16:])),
		sent:      int64(binary.BigEndian.Uint64(b[24:])),
	}, true
}

// seqTracker accounts for the messages of one publisher seen by one subscriber.
// Not safe for concurrent use: each subscriber's reader owns its trackers.
type seqTracker struct {
	seen      []uint64 // bitset of sequences seen
	unique    uint64
	dups      uint64
	reordered uint64 // arrived after a higher sequence from the same publisher
	next      uint64 // highest sequence seen + 1
}

// observe records seq and reports whether it was a duplicate.
func (t *seqTracker) observe(seq uint64) bool {
	w := seq / 64
	if w >= uint64(len(t.seen)) {
		n := max(uint64(len(t.seen))*2, w+1, 16)
		grown := make([]uint64, n)
		copy(grown, t.seen)
		t.seen = grown
	}
	bit := uint64(1) << (seq % 64)
	if t.seen[w]&bit != 0 {
		t.dups++
		return true
	}
	t.seen[w] |= bit
	t.unique++
	if seq+1 < t.next {
		t.reordered++
	}
	t.next = max(t.next, seq+1)
	return false
}

// uniqueBelow counts the distinct sequences seen below n.
func (t *seqTracker) uniqueBelow(n uint64) uint64 {
	var c uint64
	for i, w := range t.seen {
		base := uint64(i) * 64
		if base >= n {
			break
		}
		if base+64 > n {
			w &= (uint64(1) << (n - base)) - 1
		}
		c += uint64(bits.OnesCount64(w))
	}
	return c
}
