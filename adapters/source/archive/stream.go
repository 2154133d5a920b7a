package archive

import (
	"context"
	"io"
)

// countingReader counts the bytes read through it (the compressed side).
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// guardReader sits on the uncompressed side of a stream. It stops the stream
// as soon as the ratio of uncompressed to compressed bytes passes maxRatio
// (once RatioGraceBytes have flowed; maxRatio 0 disables the check), or the
// uncompressed total passes maxOut, or ctx is done. The entry being read is
// named through *cur, so that the refusal names it.
type guardReader struct {
	ctx      context.Context
	r        io.Reader
	in       *countingReader
	out      int64
	maxRatio int64
	maxOut   int64
	cur      *string
}

func (g *guardReader) Read(p []byte) (int, error) {
	if err := g.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := g.r.Read(p)
	g.out += int64(n)
	if g.out > g.maxOut {
		return n, refuse(ErrTooLarge, *g.cur)
	}
	if g.maxRatio > 0 && g.out > RatioGraceBytes && g.out > g.maxRatio*max(g.in.n, 1) {
		return n, refuse(ErrCompressionRatio, *g.cur)
	}
	return n, err
}

// ctxReader makes a long copy stop when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
