package airatelimiting

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/phasegate/phasegate/pluginsdk"
	"github.com/phasegate/phasegate/ratelimit"
)

// stores is what a plugin holds in the gateway's pluginsdk.Shared: its
// store (one Local per gateway, one Redis client per connection config)
// and the keeper of that store and lease. The plugins of every route and
// of successive configs that use the same store share it, so a reload
// keeps the counters, the connection and the renewals of requests in
// flight; the last plugin to let go closes the keeper, then the store.
type stores struct {
	keeper  *ratelimit.Keeper
	local   bool
	release []func() error // keeper's, then store's
}

// acquireStores takes a hold on cfg's store and keeper in shared (a
// store of the plugin's own when shared is nil).
func acquireStores(shared *pluginsdk.Shared, cfg Config, log zerolog.Logger) (stores, error) {
	storeKey, open := localStore()
	if cfg.Policy == PolicyRedis {
		storeKey, open = redisStore(cfg.Redis)
	}
	store, releaseStore, err := pluginsdk.AcquireShared(shared, storeKey, open)
	if err != nil {
		return stores{}, err
	}
	keeper, releaseKeeper, err := pluginsdk.AcquireShared(shared, fmt.Sprintf("%s keeper lease=%s", storeKey, cfg.Lease),
		func() (sharedKeeper, error) {
			k, err := newKeeper(store, cfg.Lease, log)
			return sharedKeeper{k}, err
		})
	if err != nil {
		return stores{}, errors.Join(err, releaseStore())
	}
	return stores{keeper: keeper.Keeper, local: cfg.Policy != PolicyRedis, release: []func() error{releaseKeeper, releaseStore}}, nil
}

// Close gives back the holds, the keeper's first: it renews on the store.
func (s stores) Close() error {
	var errs []error
	for _, r := range s.release {
		errs = append(errs, r())
	}
	return errors.Join(errs...)
}

// localStore is the gateway's in-process store.
func localStore() (string, func() (ratelimit.Store, error)) {
	return Name + " local", func() (ratelimit.Store, error) { return ratelimit.NewLocal(ratelimit.LocalOptions{}), nil }
}

// redisStore is the client of one Redis connection config. The key names
// the password by a digest only.
func redisStore(c Redis) (string, func() (ratelimit.Store, error)) {
	pw := sha256.Sum256([]byte(c.Password))
	key := fmt.Sprintf("%s redis %s user=%q db=%d timeout=%s prefix=%q password=%s",
		Name, c.Address, c.Username, c.DB, c.Timeout, c.KeyPrefix, hex.EncodeToString(pw[:8]))
	return key, func() (ratelimit.Store, error) {
		rs, err := ratelimit.NewRedis(ratelimit.RedisConfig{
			Address: c.Address, Username: c.Username, Password: c.Password,
			DB: c.DB, Timeout: c.Timeout, KeyPrefix: c.KeyPrefix,
		})
		if err != nil {
			return nil, err
		}
		return rs, nil
	}
}

// sharedKeeper is a keeper as an io.Closer.
type sharedKeeper struct{ *ratelimit.Keeper }

func (k sharedKeeper) Close() error { k.Keeper.Close(); return nil }

// newKeeper starts a keeper that logs failed renewals and lost
// reservations.
func newKeeper(store ratelimit.Store, lease time.Duration, log zerolog.Logger) (*ratelimit.Keeper, error) {
	return ratelimit.NewKeeper(store, lease, ratelimit.KeeperEvents{
		RenewFailed: func(err error) {
			log.Warn().Err(err).Msg("rate-limit renewal failed; leases of requests in flight may pass")
		},
		Lost: func(r *ratelimit.Reservation) {
			log.Warn().Str("reservation", r.ID()).Msg("a rate-limit reservation expired before its request ended")
		},
	})
}
