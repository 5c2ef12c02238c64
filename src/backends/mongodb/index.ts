/** The MongoDB backend (Node and Bun only: the official driver does not run on Cloudflare Workers). */

export { mongodbFactory } from './factory.js'
export { createMongoStorage, MongoStorage, type MongoStorageOptions } from './mongo-storage.js'
