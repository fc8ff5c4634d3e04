//go:build !unix

package store

import "os"

// fileSegment is the WAL segment where mmap is not available: one write(2)
// per record.
type fileSegment struct {
	f    *os.File
	size int
	pos  int
	err  error
}

func openSegmentFile(path string, size int) (segmentFile, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	return &fileSegment{f: f, size: size}, nil
}

func (s *fileSegment) write(rec []byte) bool {
	if s.pos+len(rec) > s.size {
		return false
	}
	n, err := s.f.Write(rec)
	s.pos += n
	if err != nil {
		s.err = err
	}
	return true
}

func (s *fileSegment) sync() error {
	if s.err != nil {
		return s.err
	}
	return s.f.Sync()
}

func (s *fileSegment) close() error { return s.f.Close() }

func (s *fileSegment) position() int { return s.pos }

func (s *fileSegment) prefault(pos, ahead int) {}
