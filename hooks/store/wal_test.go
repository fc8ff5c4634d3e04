package store

import (
	"os"
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
	if err := st.Abort(); err != nil { // nothing applied to Badger
		t.Fatal(err)
	}
	f, err := os.OpenFile(seg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte{0x40, 1, 2, 3}); err != nil { // a record cut short
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
