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

type wal struct {
	dir  string
	f    *os.File
	num  uint64
	size int64
	buf  []byte
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
// and returns the segment numbers read.
func replayWAL(dir string, apply func([]op) error) ([]uint64, error) {
	nums, err := walSegments(dir)
	if err != nil {
		return nil, err
	}
	for i, n := range nums {
		f, err := os.Open(segPath(dir, n))
		if err != nil {
			return nil, err
		}
		r := bufio.NewReaderSize(f, 1<<16)
		for {
			ops, err := readRecord(r)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				if i == len(nums)-1 {
					break // torn tail of the last segment: the crash point
				}
				f.Close()
				return nil, fmt.Errorf("wal segment %d: %w", n, err)
			}
			if err := apply(ops); err != nil {
				f.Close()
				return nil, err
			}
		}
		f.Close()
	}
	return nums, nil
}

func readRecord(r *bufio.Reader) ([]op, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("%w: wal record length: %v", ErrCorrupt, err)
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

// openSegment starts segment num.
func (w *wal) openSegment(num uint64) error {
	f, err := os.OpenFile(segPath(w.dir, num), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	w.f, w.num, w.size = f, num, 0
	return nil
}

// append writes one record holding ops.
func (w *wal) append(ops []op) error {
	body := binary.AppendUvarint(w.buf[:0], uint64(len(ops)))
	for _, o := range ops {
		body = append(body, byte(o.kind))
		body = binary.AppendUvarint(body, uint64(len(o.key)))
		body = append(body, o.key...)
		body = binary.AppendUvarint(body, uint64(len(o.val)))
		body = append(body, o.val...)
	}
	rec := make([]byte, 0, len(body)+binary.MaxVarintLen64+4)
	rec = binary.AppendUvarint(rec, uint64(len(body)))
	rec = binary.BigEndian.AppendUint32(rec, crc32.Checksum(body, crcTable))
	rec = append(rec, body...)
	w.buf = body[:0]
	n, err := w.f.Write(rec)
	w.size += int64(n)
	return err
}
