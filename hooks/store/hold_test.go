package store

import (
	"bytes"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// waitCommitted waits until the committer has handled every write queued so
// far, without asking it to write held records (as Sync does).
func waitCommitted(t *testing.T, st *Store) {
	t.Helper()
	st.mu.Lock()
	want := st.ticket
	st.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		st.mu.Lock()
		defer st.mu.Unlock()
		for st.committed < want && !st.closed {
			st.cond.Wait()
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("committer did not catch up")
	}
}

// versions counts every version Badger has of key, delete markers included.
func versions(t *testing.T, st *Store, key []byte) (n int, live bool) {
	t.Helper()
	err := st.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{AllVersions: true, Prefix: key})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if !bytes.Equal(it.Item().Key(), key) {
				continue
			}
			if n == 0 {
				live = !it.Item().IsDeletedOrExpired()
			}
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n, live
}

func outboundRec(t *testing.T) []byte {
	t.Helper()
	return (&msgRec{Stage: stagePublish, Topic: "a", Qos: 1, Payload: []byte("x")}).encode(kindOutbound)
}

// A record created and deleted within its hold, even in different group
// commits (a subscriber acknowledging after the commit window), never
// reaches Badger: no version of it, not even a delete marker.
func TestHeldRecordDeletedWithinHoldNeverReachesBadger(t *testing.T) {
	st, err := Open(t.TempDir(), Options{HoldDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	key := outboundKey("sub", 1)
	st.enqueue(op{kind: opSet, key: key, val: outboundRec(t), create: true})
	waitCommitted(t, st)
	if n, _ := versions(t, st, key); n != 0 {
		t.Fatalf("held record reached Badger: %d versions", n)
	}
	st.enqueueLazy(op{kind: opDelete, key: key})
	if err := st.Sync(); err != nil {
		t.Fatal(err)
	}
	if n, _ := versions(t, st, key); n != 0 {
		t.Fatalf("record created and deleted within its hold left %d versions in Badger", n)
	}
}

// A record still live when its hold has passed is written to Badger; an
// update made while it was held is what gets written.
func TestHeldRecordLiveAfterHoldReachesBadger(t *testing.T) {
	st, err := Open(t.TempDir(), Options{HoldDelay: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	key := outboundKey("sub", 1)
	st.enqueue(op{kind: opSet, key: key, val: outboundRec(t), create: true})
	updated := (&msgRec{Stage: stagePubrel, Topic: "a", Qos: 2, PacketID: 7}).encode(kindOutbound)
	st.enqueue(op{kind: opSet, key: key, val: updated})
	// No Sync here: the hold timer alone must write it.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for {
		if n, live := versions(t, st, key); n > 0 {
			if !live || n != 1 {
				t.Fatalf("versions %d live %v, want one live version", n, live)
			}
			break
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatal("live record not written to Badger after its hold")
		}
	}
	err = st.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if !bytes.Equal(v, updated) {
				t.Error("written value is not the latest update")
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A held record survives a crash through the WAL, also when the segment it
// was written to has been sealed and everything else in it applied: that
// segment stays until the record is in Badger.
func TestHeldRecordSurvivesCrash(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(dir, Options{HoldDelay: time.Hour, CommitDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	key := outboundKey("sub", 1)
	st.enqueue(op{kind: opSet, key: key, val: outboundRec(t), create: true})
	walNum := func() uint64 {
		st.mu.Lock()
		defer st.mu.Unlock()
		return st.wal.num
	}
	first := walNum()
	big := bytes.Repeat([]byte{1}, 1<<20)
	for i := range walSegmentSize>>20 + 2 { // seal the record's segment
		st.enqueue(op{kind: opSet, key: retainedKey(string(rune('a' + i))), val: (&msgRec{Stage: stageRetain, Topic: "t", Payload: big}).encode(kindRetained)})
	}
	waitCommitted(t, st)
	if walNum() == first {
		t.Fatal("segment not sealed; test does not cover retention")
	}
	if n, _ := versions(t, st, key); n != 0 {
		t.Fatalf("held record reached Badger: %d versions", n)
	}
	if err := st.Abort(); err != nil {
		t.Fatal(err)
	}

	st, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n, live := versions(t, st, key); n == 0 || !live {
		t.Fatal("held record lost in a crash")
	}
}

// A graceful Close writes held records to Badger before it removes the WAL.
func TestHeldRecordWrittenOnClose(t *testing.T) {
	dir := t.TempDir()
	st, err := Open(dir, Options{HoldDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	key := outboundKey("sub", 1)
	st.enqueue(op{kind: opSet, key: key, val: outboundRec(t), create: true})
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	segs, err := walSegments(st.wal.dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(segs) != 0 {
		t.Fatalf("%d WAL segments left after Close", len(segs))
	}
	st, err = Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n, live := versions(t, st, key); n == 0 || !live {
		t.Fatal("held record lost in a graceful close")
	}
}
