//go:build unix

package store

import (
	"fmt"
	"os"
	"syscall"
)

// mmapSegment is a preallocated WAL segment mapped into memory: appending a
// record is a copy, no system call, and the kernel keeps the dirty pages if
// the process dies. Unused space is zero, which ends a replay.
type mmapSegment struct {
	f    *os.File
	data []byte
	pos  int
	// ready: the mapping is populated for writing up to here (prefault,
	// committer goroutine only).
	ready int
}

func openSegmentFile(path string, size int) (segmentFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := f.Truncate(int64(size)); err != nil {
		f.Close()
		return nil, err
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("mmap wal segment: %w", err)
	}
	return &mmapSegment{f: f, data: data}, nil
}

func (s *mmapSegment) write(rec []byte) bool {
	if s.pos+len(rec) > len(s.data) {
		return false
	}
	copy(s.data[s.pos:], rec)
	s.pos += len(rec)
	return true
}

// sync flushes the mapped pages: on Linux fsync writes back the file's dirty
// page-cache pages, which the shared mapping writes into.
func (s *mmapSegment) sync() error { return s.f.Sync() }

func (s *mmapSegment) close() error {
	err := syscall.Munmap(s.data)
	s.data = nil
	if cerr := s.f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (s *mmapSegment) position() int { return s.pos }

// prefault makes the pages from pos up to ahead bytes past it writable
// without a page fault, so that writers (holding the store's lock) only
// copy: the first write to each page of a fresh segment otherwise faults
// (the kernel allocates the page and the file system its block), some
// microseconds each. Other goroutines may write below pos meanwhile: the
// advice never changes data. Only the committer calls it, and only it
// unmaps segments. Kernels without the advice just fault as before.
func (s *mmapSegment) prefault(pos, ahead int) {
	end := min(pos+ahead, len(s.data))
	start := max(pos, s.ready)
	page := os.Getpagesize()
	start -= start % page
	if end-start < 16*page { // not worth a system call yet
		return
	}
	if err := populateWrite(s.data[start:end]); err != nil {
		s.ready = len(s.data) // unsupported: stop trying on this segment
		return
	}
	s.ready = end
}
