package client

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/eclipse/paho.golang/autopaho/queue"
)

// offlineQueue is the bounded offline buffer behind autopaho's publish queue.
// Messages are kept in memory and, with a directory, also one file each
// (named by a sequence number, so order survives a restart). It is safe for
// concurrent use; autopaho's queue goroutine is its only Peek caller.
type offlineQueue struct {
	mu      sync.Mutex
	dir     string
	max     int
	policy  DropPolicy
	items   []queued
	nextSeq uint64
	peeked  uint64 // seq of the entry handed out by Peek, 0 if none
	waiting []chan struct{}
	onDrop  func(data []byte)
}

type queued struct {
	seq  uint64
	data []byte
}

const queueExt = ".pub"

func openOfflineQueue(dir string, maxLen int, policy DropPolicy, onDrop func([]byte)) (*offlineQueue, error) {
	q := &offlineQueue{dir: dir, max: maxLen, policy: policy, nextSeq: 1, onDrop: onDrop}
	if dir == "" {
		return q, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open queue %s: %w", dir, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("open queue %s: %w", dir, err)
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, queueExt) {
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(name, queueExt), 10, 64)
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("open queue %s: %w", dir, err)
		}
		q.items = append(q.items, queued{seq: seq, data: data})
		q.nextSeq = max(q.nextSeq, seq+1)
	}
	slices.SortFunc(q.items, func(a, b queued) int { return cmpUint(a.seq, b.seq) })
	return q, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (q *offlineQueue) path(seq uint64) string {
	return filepath.Join(q.dir, fmt.Sprintf("%020d%s", seq, queueExt))
}

// Wait implements queue.Queue.
func (q *offlineQueue) Wait() chan struct{} {
	c := make(chan struct{})
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) > 0 {
		close(c)
		return c
	}
	q.waiting = append(q.waiting, c)
	return c
}

// Enqueue implements queue.Queue, applying the bound and drop policy.
func (q *offlineQueue) Enqueue(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	var dropped []byte
	q.mu.Lock()
	if len(q.items) >= q.max {
		if q.policy == DropNewest || q.max == 0 {
			q.mu.Unlock()
			if q.onDrop != nil {
				q.onDrop(data)
			}
			return ErrOfflineBufferFull
		}
		for i, it := range q.items {
			if it.seq != q.peeked {
				dropped = it.data
				q.removeAt(i)
				break
			}
		}
	}
	seq := q.nextSeq
	q.nextSeq++
	if q.dir != "" {
		if err := writeFileAtomic(q.path(seq), data); err != nil {
			q.mu.Unlock()
			return fmt.Errorf("enqueue: %w", err)
		}
	}
	q.items = append(q.items, queued{seq: seq, data: data})
	for _, c := range q.waiting {
		close(c)
	}
	q.waiting = nil
	q.mu.Unlock()
	if dropped != nil && q.onDrop != nil {
		q.onDrop(dropped)
	}
	return nil
}

func writeFileAtomic(name string, data []byte) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}

// removeAt drops item i; q.mu must be held.
func (q *offlineQueue) removeAt(i int) {
	if q.dir != "" {
		_ = os.Remove(q.path(q.items[i].seq))
	}
	q.items = slices.Delete(q.items, i, i+1)
}

// Peek implements queue.Queue.
func (q *offlineQueue) Peek() (queue.Entry, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return nil, queue.ErrEmpty
	}
	it := q.items[0]
	q.peeked = it.seq
	return &queueEntry{q: q, item: it}, nil
}

// Len returns the number of buffered messages.
func (q *offlineQueue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// clear drops every buffered message.
func (q *offlineQueue) clear() {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.items) > 0 {
		q.removeAt(0)
	}
}

type queueEntry struct {
	q    *offlineQueue
	item queued
}

func (e *queueEntry) Reader() (io.Reader, error) { return bytes.NewReader(e.item.data), nil }

func (e *queueEntry) Leave() error {
	e.q.mu.Lock()
	e.q.peeked = 0
	e.q.mu.Unlock()
	return nil
}

func (e *queueEntry) Remove() error {
	q := e.q
	q.mu.Lock()
	defer q.mu.Unlock()
	q.peeked = 0
	for i, it := range q.items {
		if it.seq == e.item.seq {
			q.removeAt(i)
			break
		}
	}
	return nil
}

func (e *queueEntry) Quarantine() error {
	q := e.q
	q.mu.Lock()
	defer q.mu.Unlock()
	q.peeked = 0
	for i, it := range q.items {
		if it.seq == e.item.seq {
			if q.dir != "" {
				_ = os.Rename(q.path(it.seq), q.path(it.seq)+".corrupt")
			}
			q.items = slices.Delete(q.items, i, i+1)
			break
		}
	}
	return nil
}
