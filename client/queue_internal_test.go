package client

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/eclipse/paho.golang/autopaho/queue"
)

func readEntry(t *testing.T, q *offlineQueue) string {
	t.Helper()
	e, err := q.Peek()
	if err != nil {
		t.Fatalf("Peek: %v", err)
	}
	r, _ := e.Reader()
	b, _ := io.ReadAll(r)
	if err := e.Remove(); err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestOfflineQueuePolicies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		policy  DropPolicy
		want    []string
		dropped string
		fullErr error
	}{
		{"drop oldest", DropOldest, []string{"b", "c"}, "a", nil},
		{"drop newest", DropNewest, []string{"a", "b"}, "c", ErrOfflineBufferFull},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var dropped []string
			q, err := openOfflineQueue(t.TempDir(), 2, tt.policy, func(b []byte) { dropped = append(dropped, string(b)) })
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range []string{"a", "b", "c"} {
				err := q.Enqueue(bytes.NewBufferString(s))
				if i == 2 && !errors.Is(err, tt.fullErr) || i < 2 && err != nil {
					t.Fatalf("Enqueue %s: %v", s, err)
				}
			}
			if len(dropped) != 1 || dropped[0] != tt.dropped {
				t.Fatalf("dropped %v, want %s", dropped, tt.dropped)
			}
			for _, w := range tt.want {
				if got := readEntry(t, q); got != w {
					t.Fatalf("got %s want %s", got, w)
				}
			}
			if _, err := q.Peek(); !errors.Is(err, queue.ErrEmpty) {
				t.Fatalf("queue not empty: %v", err)
			}
		})
	}
}

func TestOfflineQueueSurvivesReopenInOrder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	q, err := openOfflineQueue(dir, 100, DropOldest, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"} {
		if err := q.Enqueue(bytes.NewBufferString(s)); err != nil {
			t.Fatal(err)
		}
	}
	// An entry left (not removed) stays first.
	e, _ := q.Peek()
	_ = e.Leave()
	q2, err := openOfflineQueue(dir, 100, DropOldest, nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-q2.Wait():
	default:
		t.Fatal("Wait on a non-empty queue blocks")
	}
	for _, w := range []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11"} {
		if got := readEntry(t, q2); got != w {
			t.Fatalf("after reopen got %s want %s", got, w)
		}
	}
	wait := q2.Wait()
	_ = q2.Enqueue(bytes.NewBufferString("x"))
	select {
	case <-wait:
	default:
		t.Fatal("Wait not released by Enqueue")
	}
	q2.clear()
	if q2.Len() != 0 {
		t.Fatal("clear left entries")
	}
	q3, _ := openOfflineQueue(dir, 100, DropOldest, nil)
	if q3.Len() != 0 {
		t.Fatal("clear left files")
	}
}

func TestOfflineQueueDropOldestSkipsPeekedEntry(t *testing.T) {
	t.Parallel()
	q, _ := openOfflineQueue("", 2, DropOldest, nil)
	_ = q.Enqueue(bytes.NewBufferString("a"))
	_ = q.Enqueue(bytes.NewBufferString("b"))
	e, _ := q.Peek() // "a" is being sent
	_ = q.Enqueue(bytes.NewBufferString("c"))
	_ = e.Remove()
	if got := readEntry(t, q); got != "c" {
		t.Fatalf("got %s, want c (b dropped, a in flight)", got)
	}
}
