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
