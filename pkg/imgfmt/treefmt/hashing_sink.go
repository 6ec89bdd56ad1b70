package treefmt

import (
	"io"
	"sync"
)

// HashingSink passes an image through to W and computes its sparse digest and size on the way.
// The sentry uses it to fill ImageSize and ImageSHA256 while it streams.
type HashingSink struct {
	// W receives the data and the holes.
	W interface {
		io.Writer
		Hole(n int64) error
	}
	// Parallel hashes on another goroutine, behind the writes: each write is copied into
	// buffers of a small queue (at most hashQueueBytes) and Write returns once W has written it,
	// while the hasher works through the queue. SHA-256 costs more CPU per byte than reading the
	// memory file and writing the image together (a 1 GiB image: ~0.7 s against ~0.27 s), so
	// with a core to spare the hasher runs without pause and the writer keeps ahead of it;
	// before, each write waited for its own hash and the reads of the next chunk did not
	// overlap with it. Result waits for the queue to drain. After a failed write the digest is
	// undefined.
	Parallel bool
	d        Digest
	q        *hashQueue
}

// Write implements io.Writer.
func (s *HashingSink) Write(b []byte) (int, error) {
	if !s.Parallel {
		n, err := s.W.Write(b)
		s.d.Write(b[:n])
		return n, err
	}
	if s.q == nil {
		s.q = newHashQueue(&s.d)
	}
	n, err := s.W.Write(b)
	s.q.write(b[:n])
	return n, err
}

// Hole implements imgfmt.Sink.
func (s *HashingSink) Hole(n int64) error {
	if err := s.W.Hole(n); err != nil {
		return err
	}
	if s.q != nil {
		s.q.hole(n)
	} else {
		s.d.Hole(n)
	}
	return nil
}

// Result returns the digest (hex) and size of everything written so far.
func (s *HashingSink) Result() (string, int64) {
	if s.q != nil {
		s.q.wait()
	}
	return s.d.Sum(), s.d.size
}

// hashQueueBufs and hashQueueBuf bound what a hashQueue holds that is not hashed yet: a write is
// copied into buffers of hashQueueBuf bytes and waits while all hashQueueBufs are in use. That is
// a few of the encoder's 1 MiB chunks: enough to keep the hasher busy while the writer reads the
// next chunk, small beside an image. The buffers are allocated once per queue and reused: fresh
// ones cost a page fault per page on the copy (a first version that allocated per write spent as
// much CPU in the copy as in SHA-256).
const (
	hashQueueBufs = 8
	hashQueueBuf  = 1 << 20
)

// hashQueueBytes is the most a hashQueue holds.
const hashQueueBytes = hashQueueBufs * hashQueueBuf

// hashQueue feeds a Digest on a goroutine of its own, in order. The goroutine runs only while
// there is work queued: a sink abandoned after a failed write leaks nothing.
type hashQueue struct {
	d *Digest
	// free holds the buffers not in use; allocated counts those made so far.
	free      chan []byte
	allocated int

	mu sync.Mutex
	// ops are the writes and holes not hashed yet, in order.
	ops []hashOp
	// running says the hasher goroutine is at work; idle is closed when it stops.
	running bool
	idle    chan struct{}
}

// hashOp is one queued write (buf) or hole (hole bytes).
type hashOp struct {
	buf  []byte
	hole int64
}

func newHashQueue(d *Digest) *hashQueue {
	return &hashQueue{d: d, free: make(chan []byte, hashQueueBufs)}
}

// write queues a copy of b, waiting while every buffer is in use.
func (q *hashQueue) write(b []byte) {
	for len(b) > 0 {
		var buf []byte
		select {
		case buf = <-q.free:
		default:
			if q.allocated < hashQueueBufs {
				q.allocated++
				buf = make([]byte, hashQueueBuf)
			} else {
				buf = <-q.free
			}
		}
		n := copy(buf[:cap(buf)], b)
		b = b[n:]
		q.push(hashOp{buf: buf[:n]})
	}
}

// hole queues a hole of n bytes.
func (q *hashQueue) hole(n int64) { q.push(hashOp{hole: n}) }

// push appends op and starts the hasher if it is not running.
func (q *hashQueue) push(op hashOp) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.ops = append(q.ops, op)
	if !q.running {
		q.running = true
		q.idle = make(chan struct{})
		go q.run()
	}
}

// run hashes the queued operations until none is left.
func (q *hashQueue) run() {
	for {
		q.mu.Lock()
		if len(q.ops) == 0 {
			q.running = false
			close(q.idle)
			q.mu.Unlock()
			return
		}
		op := q.ops[0]
		q.ops[0] = hashOp{}
		q.ops = q.ops[1:]
		q.mu.Unlock()
		if op.buf != nil {
			q.d.Write(op.buf)
			q.free <- op.buf
		} else {
			q.d.Hole(op.hole)
		}
	}
}

// wait returns once everything queued is hashed.
func (q *hashQueue) wait() {
	q.mu.Lock()
	running, idle := q.running, q.idle
	q.mu.Unlock()
	if running {
		<-idle
	}
}
