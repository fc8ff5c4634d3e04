package store

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// The write-ahead log makes a write durable against a process crash the
// moment it is queued: enqueue appends the record to the current segment
// with one write(2) on the caller's goroutine, so an acknowledgement never
// waits for Badger. The committer applies records to Badger in the same
// order in the background; a segment is deleted once everything in it is in
// Badger. Open replays the segments left by a crash.
//
// Segment files are dir/wal/%016x.log, numbered in creation order. A record
// is uvarint(len(body)) | crc32c(body) (4 bytes, big endian) | body, and a
// body is uvarint(count) then, per op, kind | uvarint(len(key)) | key |
// uvarint(len(val)) | val. A torn record at the end of the last segment (a
// crash mid-write) ends the replay.

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// walSegmentSize is the size of a WAL segment; a record larger than it gets
// a segment of its own.
const walSegmentSize = 8 << 20

// segmentFile is one WAL segment being written.
type segmentFile interface {
	write(rec []byte) bool // false: no room left
	sync() error
	close() error
	position() int
	// prefault prepares the segment for writes from pos up to ahead bytes
	// past it (the committer calls it outside the lock, with a position
	// read under it).
	prefault(pos, ahead int)
}

// walPrefault is how far ahead of the write position the committer
// prepares the current segment: some 1,500 messages of 150 bytes.
const walPrefault = 256 << 10

// sealedSegment is a full segment whose records may not all be in Badger
// yet: it is deleted once the committer has applied ticket.
type sealedSegment struct {
	num    uint64
	ticket uint64
	f      segmentFile
}

type wal struct {
	dir    string
	f      segmentFile
	num    uint64
	sealed []sealedSegment
	buf    []byte
}

func walSegments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var nums []uint64
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".log") {
			continue
		}
		var n uint64
		if _, err := fmt.Sscanf(name, "%016x.log", &n); err == nil {
			nums = append(nums, n)
		}
	}
	sort.Slice(nums, func(i, j int) bool { return nums[i] < nums[j] })
	return nums, nil
}

func segPath(dir string, n uint64) string { return filepath.Join(dir, fmt.Sprintf("%016x.log", n)) }

// replayWAL feeds every intact record of every segment to apply, in order,
// and returns the segment numbers read. A torn or damaged record (a crash
// mid-write, or a power loss without SyncWrites) ends the replay: what follows
// it was never acknowledged as durable in the modes that promise it.
func replayWAL(dir string, apply func([]op) error) (nums []uint64, torn bool, err error) {
	nums, err = walSegments(dir)
	if err != nil {
		return nil, false, err
	}
	for _, n := range nums {
		f, err := os.Open(segPath(dir, n))
		if err != nil {
			return nil, false, err
		}
		r := bufio.NewReaderSize(f, 1<<16)
		for {
			ops, err := readRecord(r)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				f.Close()
				return nums, true, nil
			}
			if err := apply(ops); err != nil {
				f.Close()
				return nil, false, err
			}
		}
		f.Close()
	}
	return nums, false, nil
}

func readRecord(r *bufio.Reader) ([]op, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("%w: wal record length: %v", ErrCorrupt, err)
	}
	if n == 0 {
		return nil, io.EOF // the zeroed, unwritten rest of a preallocated segment
	}
	if n > 1<<30 {
		return nil, fmt.Errorf("%w: wal record of %d bytes", ErrCorrupt, n)
	}
	var sum [4]byte
	if _, err := io.ReadFull(r, sum[:]); err != nil {
		return nil, fmt.Errorf("%w: torn wal record", ErrCorrupt)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("%w: torn wal record", ErrCorrupt)
	}
	if crc32.Checksum(body, crcTable) != binary.BigEndian.Uint32(sum[:]) {
		return nil, fmt.Errorf("%w: wal checksum", ErrCorrupt)
	}
	return decodeOps(body)
}

func decodeOps(b []byte) ([]op, error) {
	d := &dec{b: b}
	count := d.uv()
	if count > uint64(len(b)) {
		return nil, fmt.Errorf("%w: wal op count", ErrCorrupt)
	}
	ops := make([]op, 0, count)
	for i := uint64(0); i < count && d.err == nil; i++ {
		o := op{kind: opKind(d.byte1())}
		o.key = d.bytes()
		o.val = d.bytes()
		if o.kind < opSet || o.kind > opDeletePrefix {
			d.fail("wal op kind")
		}
		ops = append(ops, o)
	}
	if err := d.done(); err != nil {
		return nil, err
	}
	return ops, nil
}

// openSegment starts segment num with room for at least min bytes.
func (w *wal) openSegment(num uint64, min int) error {
	f, err := openSegmentFile(segPath(w.dir, num), max(walSegmentSize, min))
	if err != nil {
		return err
	}
	w.f, w.num = f, num
	return nil
}

// walHeaderMax is the largest record header: uvarint(len(body)) and the
// checksum.
const walHeaderMax = binary.MaxVarintLen64 + 4

// append writes one record holding ops; lastTicket is the ticket of the
// record before it (a segment sealed now holds records up to it). The record
// is built in w.buf, reused from call to call: the body goes after room for
// the largest header, and the header is written just before the body.
func (w *wal) append(ops []op, lastTicket uint64) error {
	b := w.buf[:0]
	if cap(b) < walHeaderMax {
		b = make([]byte, 0, 4096)
	}
	b = b[:walHeaderMax]
	b = binary.AppendUvarint(b, uint64(len(ops)))
	for _, o := range ops {
		b = append(b, byte(o.kind))
		b = binary.AppendUvarint(b, uint64(len(o.key)))
		b = append(b, o.key...)
		b = binary.AppendUvarint(b, uint64(len(o.val)))
		b = append(b, o.val...)
	}
	body := b[walHeaderMax:]
	var hdr [walHeaderMax]byte
	h := binary.AppendUvarint(hdr[:0], uint64(len(body)))
	h = binary.BigEndian.AppendUint32(h, crc32.Checksum(body, crcTable))
	start := walHeaderMax - len(h)
	copy(b[start:], h)
	rec := b[start:]
	if cap(b) <= 1<<20 { // a huge record's buffer is not kept
		w.buf = b[:0]
	} else {
		w.buf = nil
	}
	if w.f.write(rec) {
		return nil
	}
	w.sealed = append(w.sealed, sealedSegment{num: w.num, ticket: lastTicket, f: w.f})
	if err := w.openSegment(w.num+1, len(rec)+1); err != nil {
		return err
	}
	if !w.f.write(rec) {
		return fmt.Errorf("wal record of %d bytes does not fit a new segment", len(rec))
	}
	return nil
}
