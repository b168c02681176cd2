package cache

import (
	"context"
	"io"
	"net/url"
	"strings"

	"github.com/conveyor-ci/conveyor/internal/errs"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Config names an S3-compatible bucket.
type S3Config struct {
	// URL is the endpoint, http:// or https:// (e.g. https://s3.eu-west-1.amazonaws.com).
	URL       string
	Bucket    string
	Prefix    string // object name prefix inside the bucket, e.g. "conveyor/"
	Region    string
	AccessKey string
	SecretKey string
	// PathStyle forces path-style requests (most self-hosted stores need it).
	PathStyle bool
}

// S3 keeps blobs in an S3-compatible bucket (AWS, Versity, SeaweedFS,
// Ceph, Garage, MinIO...).
type S3 struct {
	c      *minio.Client
	bucket string
	prefix string
}

// NewS3 connects and makes the bucket when it is missing.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	const op = "cache s3"
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errs.E(op, errs.Invalid, "S3 URL %q: want http(s)://host[:port]", cfg.URL)
	}
	if cfg.Bucket == "" {
		return nil, errs.E(op, errs.Invalid, "no S3 bucket given")
	}
	lookup := minio.BucketLookupAuto
	if cfg.PathStyle {
		lookup = minio.BucketLookupPath
	}
	c, err := minio.New(u.Host, &minio.Options{
		Creds:        credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey, ""),
		Secure:       u.Scheme == "https",
		Region:       cfg.Region,
		BucketLookup: lookup,
	})
	if err != nil {
		return nil, errs.Wrap(op, errs.Invalid, err)
	}
	ok, err := c.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, errs.Wrap(op, errs.Unavailable, err)
	}
	if !ok {
		if err := c.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{Region: cfg.Region}); err != nil {
			return nil, errs.Wrap(op, errs.Unavailable, err)
		}
	}
	prefix := strings.TrimPrefix(cfg.Prefix, "/")
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return &S3{c: c, bucket: cfg.Bucket, prefix: prefix}, nil
}

// Put implements Blobs; an unknown size streams as a multipart upload.
func (s *S3) Put(ctx context.Context, name string, r io.Reader, size int64) error {
	opts := minio.PutObjectOptions{ContentType: "application/octet-stream"}
	if size < 0 {
		opts.PartSize = 16 << 20 // bounded memory for a stream of unknown length
	}
	_, err := s.c.PutObject(ctx, s.bucket, s.prefix+name, r, size, opts)
	return s.wrap(err)
}

// Get implements Blobs.
func (s *S3) Get(ctx context.Context, name string) (io.ReadCloser, error) {
	o, err := s.c.GetObject(ctx, s.bucket, s.prefix+name, minio.GetObjectOptions{})
	if err != nil {
		return nil, s.wrap(err)
	}
	if _, err := o.Stat(); err != nil { // GetObject is lazy: find a missing object now
		o.Close()
		return nil, s.wrap(err)
	}
	return o, nil
}

// Delete implements Blobs.
func (s *S3) Delete(ctx context.Context, name string) error {
	return s.wrap(s.c.RemoveObject(ctx, s.bucket, s.prefix+name, minio.RemoveObjectOptions{}))
}

// List implements Blobs.
func (s *S3) List(ctx context.Context, prefix string) ([]string, error) {
	var out []string
	for o := range s.c.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: s.prefix + prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, s.wrap(o.Err)
		}
		out = append(out, strings.TrimPrefix(o.Key, s.prefix))
	}
	return out, nil
}

func (s *S3) wrap(err error) error {
	if err == nil {
		return nil
	}
	switch minio.ToErrorResponse(err).Code {
	case "NoSuchKey", "NoSuchObject":
		return errs.Wrap("cache s3", errs.NotFound, err)
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch":
		return errs.Wrap("cache s3", errs.Unauthorized, err)
	}
	return errs.Wrap("cache s3", errs.Unavailable, err)
}

var (
	_ Blobs = (*S3)(nil)
	_ Blobs = (*Dir)(nil)
)
