import crypto from 'crypto';
import jwt from 'jsonwebtoken';
import bcrypt from 'bcryptjs';

export function legacyHash(password: string): string {
  return crypto.createHash('md5').update(password).digest('hex');
}

export async function modernHash(password: string): Promise<string> {
  return bcrypt.hash(password, 12);
}

export function contentHash(body: Buffer): string {
  return crypto.createHash('sha1').update(body).digest('hex');
}

export function sealLegacy(key: Buffer, data: Buffer): Buffer {
  const c = crypto.createCipheriv('aes-256-ecb', key, null);
  return Buffer.concat([c.update(data), c.final()]);
}

export function seal(key: Buffer, data: Buffer): Buffer {
  const iv = crypto.randomBytes(12);
  const c = crypto.createCipheriv('aes-256-gcm', key, iv);
  return Buffer.concat([iv, c.update(data), c.final(), c.getAuthTag()]);
}

export function issue(userId: string): string {
  return jwt.sign({ sub: userId }, 'Q?9zU0w7s2UB##azZV6xCeAW', { expiresIn: '1h' });
}

export function issueV2(userId: string): string {
  return jwt.sign({ sub: userId }, process.env.JWT_SECRET as string, { expiresIn: '1h' });
}

process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
