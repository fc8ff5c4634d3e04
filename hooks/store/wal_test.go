package store

import (
	"os"
	"path/filepath"
	"testing"
)

// A crash mid-write leaves a torn record at the end of the WAL: Open replays
// everything before it and starts.
func TestWALReplayStopsAtTornTail(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec := (&msgRec{Stage: stageRetain, Topic: "a", Payload: []byte("x")}).encode(kindRetained)
	st.enqueue(op{kind: opSet, key: retainedKey("a"), val: rec})
	st.enqueue(op{kind: opSet, key: retainedKey("b"), val: rec})
	seg := segPath(st.wal.dir, st.wal.num)
	end := st.wal.f.(interface{ position() int }).position()
	if err := st.Abort(); err != nil { // nothing applied to Badger
		t.Fatal(err)
	}
	f, err := os.OpenFile(seg, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A record cut short right after the intact ones: its length promises
	// 64 bytes, its checksum and body are cut off.
	if _, err := f.WriteAt([]byte{0x40, 1, 2, 3}, int64(end)); err != nil {
		t.Fatal(err)
	}
	f.Close()

	st, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	keys, err := st.keysWithPrefix([]byte{kindRetained})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("replayed %d records, want 2", len(keys))
	}
	if _, err := os.Stat(seg); !os.IsNotExist(err) {
		t.Fatalf("replayed segment kept: %v", err)
	}
}

// Records larger than a segment, and enough records to fill several
// segments, survive a crash and a replay; applied segments are removed.
func TestWALSegmentsRotateAndReplay(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(dir, Options{CommitDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	st.mu.Lock()
	first := st.wal.num
	st.mu.Unlock()
	big := make([]byte, walSegmentSize+100)
	st.enqueue(op{kind: opSet, key: retainedKey("big"), val: (&msgRec{Stage: stageRetain, Topic: "big", Payload: big}).encode(kindRetained)})
	val := (&msgRec{Stage: stageRetain, Topic: "t", Payload: make([]byte, 64<<10)}).encode(kindRetained)
	for i := range 300 { // ~19 MiB: three or more segments
		st.enqueue(op{kind: opSet, key: retainedKey(string(rune('a' + i%26))), val: val})
	}
	st.mu.Lock()
	last := st.wal.num
	st.mu.Unlock()
	if last-first < 3 {
		t.Fatalf("wal went from segment %d to %d, want several", first, last)
	}
	if err := st.Abort(); err != nil {
		t.Fatal(err)
	}
	st, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := st.keysWithPrefix([]byte{kindRetained})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 27 {
		t.Fatalf("%d retained keys after replay, want 27", len(keys))
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if segs, _ := walSegments(filepath.Join(dir, "wal")); len(segs) != 0 {
		t.Fatalf("segments left after a clean close: %v", segs)
	}
}
