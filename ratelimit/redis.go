package ratelimit

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

var (
	//go:embed lua/common.lua
	luaCommon string
	//go:embed lua/reserve.lua
	luaReserve string
	//go:embed lua/commit.lua
	luaCommit string
	//go:embed lua/renew.lua
	luaRenew string

	// Each script runs with EVALSHA, and with EVAL when the server answers
	// NOSCRIPT (after a restart or SCRIPT FLUSH).
	reserveScript = redis.NewScript(luaCommon + luaReserve)
	commitScript  = redis.NewScript(luaCommon + luaCommit)
	renewScript   = redis.NewScript(luaCommon + luaRenew)
)

// RedisConfig configures a Redis store.
type RedisConfig struct {
	// Address is the server's host:port; default "127.0.0.1:6379".
	Address string
	// Username and Password authenticate (ACL or requirepass); empty: none.
	Username, Password string
	// DB is the database number; default 0.
	DB int
	// Timeout bounds every store call, connecting included; default 100ms.
	Timeout time.Duration
	// KeyPrefix starts every key; default "phasegate".
	KeyPrefix string
}

// Redis is a Store shared by every instance that uses the same server and
// key prefix. Each call is one script run (Renew: one pipeline), atomic on
// the server and timed by the server's clock. It needs a single Redis node:
// see the package doc.
type Redis struct {
	client  *redis.Client
	timeout time.Duration
	prefix  string
	// pinned replaces the server's TIME when set (tests only), so a test
	// can move the clock as it does Local's.
	pinned func() time.Time
}

var _ Store = (*Redis)(nil)

// NewRedis returns a store for cfg. It does not connect: the first call
// does, so an instance starts while Redis is down and recovers when it is
// back.
func NewRedis(cfg RedisConfig) (*Redis, error) {
	if cfg.Address == "" {
		cfg.Address = "127.0.0.1:6379"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 100 * time.Millisecond
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = "phasegate"
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("%w: redis timeout %v is negative", ErrInvalid, cfg.Timeout)
	}
	if cfg.DB < 0 {
		return nil, fmt.Errorf("%w: redis db %d is negative", ErrInvalid, cfg.DB)
	}
	t := cfg.Timeout
	client := redis.NewClient(&redis.Options{
		Addr:     cfg.Address,
		Username: cfg.Username,
		Password: cfg.Password,
		DB:       cfg.DB,
		// Every wait is bounded by the call's timeout: the context carries
		// it, and each socket operation has it too.
		ContextTimeoutEnabled: true,
		DialTimeout:           t,
		ReadTimeout:           t,
		WriteTimeout:          t,
		PoolTimeout:           t,
		DialerRetries:         1,
		// One immediate retry replaces a pooled connection that died with
		// the server; the scripts are idempotent, and the context still
		// bounds the whole call.
		MaxRetries:      1,
		MinRetryBackoff: -1,
		MaxRetryBackoff: -1,
		// No extra round trips on connect: a reconnection must fit in the
		// timeout.
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	})
	return &Redis{client: client, timeout: t, prefix: cfg.KeyPrefix}, nil
}

// Close closes the connections.
func (s *Redis) Close() error { return s.client.Close() }

// keys returns the counter hash and lease set keys of l (see the package
// doc for the layout).
func (s *Redis) keys(l Limit) (hash, leases string) {
	hash = s.prefix + ":rl:" + keyPart(l.Name) + ":" + l.Kind.String() + ":" +
		strconv.FormatInt(int64(l.Window)/ms, 10) + ":" + keyPart(l.Key)
	return hash, hash + ":leases"
}

// keyPart escapes v so that it holds no ':' and the key splits one way
// only; a value longer than keyPartMax escaped is replaced by its SHA-256,
// so a hostile key value cannot make huge keys. Escaped values never hold
// '#', so hashed ones cannot collide with them.
func keyPart(v string) string {
	e := url.QueryEscape(v)
	if len(e) <= keyPartMax {
		return e
	}
	return hashKey(v)
}

// now is the pinned clock in Unix ms, or 0 for the server's TIME.
func (s *Redis) now() int64 {
	if s.pinned == nil {
		return 0
	}
	return s.pinned().UnixMilli()
}

// call bounds ctx by the store's timeout and wraps any failure as a
// *StoreError.
func (s *Redis) call(ctx context.Context, op string, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err := f(ctx)
	if err == nil {
		return nil
	}
	// a socket deadline taken from ctx fails as an i/o timeout, maybe
	// before ctx notices: make both match context.DeadlineExceeded
	var ne net.Error
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		err = fmt.Errorf("%w: %w", cerr, err)
	} else if cerr == nil && errors.As(err, &ne) && ne.Timeout() {
		err = fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
	}
	return &StoreError{Op: op, Err: err}
}

// Reserve implements Store.
func (s *Redis) Reserve(ctx context.Context, items []Item, lease time.Duration) (Decision, error) {
	if err := validateReserve(items, lease); err != nil {
		return Decision{}, err
	}
	id := newID()
	keys := make([]string, 0, 2*len(items))
	args := make([]any, 0, 5+3*len(items))
	args = append(args, id, int64(lease)/ms, int64(margin)/ms, int64(lateCommit)/ms, s.now())
	for _, it := range items {
		h, l := s.keys(it.Limit)
		keys = append(keys, h, l)
		args = append(args, int64(it.Window)/ms, it.Max, it.Amount)
	}
	var v []int64
	err := s.call(ctx, "reserve", func(ctx context.Context) (err error) {
		v, err = reserveScript.Run(ctx, s.client, keys, args...).Int64Slice()
		if err == nil && len(v) != 3+3*len(items) {
			err = fmt.Errorf("reserve script returned %d values for %d items", len(v), len(items))
		}
		return err
	})
	if err != nil {
		return Decision{}, err
	}
	now := v[2]
	d := Decision{Rejected: int(v[1]) - 1, States: make([]State, len(items))}
	starts := make([]int64, len(items))
	for i, it := range items {
		starts[i] = v[3+3*i]
		d.States[i] = state(it, now, starts[i], v[4+3*i], v[5+3*i])
	}
	if v[0] == 1 {
		d.Reservation = &Reservation{owner: s, id: id, items: append([]Item(nil), items...), starts: starts, lease: lease}
	}
	return d, nil
}

// Commit implements Store.
func (s *Redis) Commit(ctx context.Context, r *Reservation, actual []int64) error {
	if err := validateCommit(s, r, actual); err != nil {
		return err
	}
	keys := make([]string, 0, 2*len(r.items))
	args := make([]any, 0, 3+3*len(r.items))
	args = append(args, r.id, int64(lateCommit)/ms, s.now())
	for i, it := range r.items {
		h, l := s.keys(it.Limit)
		keys = append(keys, h, l)
		args = append(args, int64(it.Window)/ms, r.starts[i], actual[i])
	}
	return s.call(ctx, "commit", func(ctx context.Context) error {
		return commitScript.Run(ctx, s.client, keys, args...).Err()
	})
}

// renewBatchKeys bounds the keys of one renew script run; a Renew of more
// sends several runs in one pipeline.
const renewBatchKeys = 1024

// Renew implements Store: one round trip, however many reservations.
func (s *Redis) Renew(ctx context.Context, rs []*Reservation) ([]*Reservation, error) {
	type batch struct {
		keys []string
		args []any
		rs   []*Reservation
	}
	if err := validateRenew(s, rs); err != nil {
		return nil, err
	}
	var batches []*batch
	for _, r := range rs {
		if len(batches) == 0 || len(batches[len(batches)-1].keys)+2*len(r.items) > renewBatchKeys {
			batches = append(batches, &batch{args: []any{int64(margin) / ms, int64(lateCommit) / ms, s.now()}})
		}
		b := batches[len(batches)-1]
		b.rs = append(b.rs, r)
		b.args = append(b.args, r.id, int64(r.lease)/ms, len(r.items))
		for i, it := range r.items {
			h, l := s.keys(it.Limit)
			b.keys = append(b.keys, h, l)
			b.args = append(b.args, int64(it.Window)/ms, r.starts[i])
		}
	}
	if len(batches) == 0 {
		return nil, nil
	}
	var lost []*Reservation
	err := s.call(ctx, "renew", func(ctx context.Context) error {
		run := func(send func(p redis.Pipeliner, b *batch) *redis.Cmd) ([]*redis.Cmd, error) {
			cmds := make([]*redis.Cmd, len(batches))
			_, err := s.client.Pipelined(ctx, func(p redis.Pipeliner) error {
				for i, b := range batches {
					cmds[i] = send(p, b)
				}
				return nil
			})
			return cmds, err
		}
		cmds, err := run(func(p redis.Pipeliner, b *batch) *redis.Cmd {
			return renewScript.EvalSha(ctx, p, b.keys, b.args...)
		})
		if redis.HasErrorPrefix(err, "NOSCRIPT") {
			cmds, err = run(func(p redis.Pipeliner, b *batch) *redis.Cmd {
				return renewScript.Eval(ctx, p, b.keys, b.args...)
			})
		}
		if err != nil {
			return err
		}
		for i, b := range batches {
			alive, err := cmds[i].Int64Slice()
			if err != nil {
				return err
			}
			if len(alive) != len(b.rs) {
				return errors.New("renew script returned a wrong count")
			}
			for j, a := range alive {
				if a == 0 {
					lost = append(lost, b.rs[j])
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return lost, nil
}
