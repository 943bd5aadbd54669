/**
 * A release's version as the user gives it (an image tag or a digest, checked here) and the image
 * references made from it and read back: input checks beside the registry's patterns, not remote commands.
 */
import { ConfigurationError } from '../errors';
import type { Image } from './model';
import { IMAGE_DIGEST, IMAGE_TAG } from './patterns';

/** A version is an image tag or a digest; either way the same for every image of the tenant. */
export function checkVersion(version: string, source = '--version'): string {
  if (IMAGE_TAG.re.test(version) || IMAGE_DIGEST.re.test(version)) return version;
  throw new ConfigurationError([
    {
      path: [],
      source,
      message: `${JSON.stringify(version)} is neither an image tag nor a digest`,
      hint: `use ${IMAGE_TAG.valid} (e.g. "v1.4.2"), or ${IMAGE_DIGEST.valid}`,
    },
  ]);
}

export function imageRef(image: Image, version: string): string {
  return version.startsWith('sha256:') ? `${image.repository}@${version}` : `${image.repository}:${version}`;
}

/** The version part of an image reference: the digest, else the tag, else "latest". */
export function versionOf(ref: string): string {
  const at = ref.indexOf('@');
  if (at >= 0) return ref.slice(at + 1);
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  return colon > slash ? ref.slice(colon + 1) : 'latest';
}

/**
 * The registry host of an image repository, as the engines read it: the first path component when it
 * looks like a host (has a "." or ":", or is "localhost"), else Docker Hub.
 */
export function registryHost(repository: string): string {
  const first = repository.split('/')[0]!;
  return repository.includes('/') && (/[.:]/.test(first) || first === 'localhost') ? first : 'docker.io';
}
