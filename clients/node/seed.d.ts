// Types of chatmem/seed (src/seed.js): the seed's conversationManager.
import type { ChatMemOptions } from './index.js';

/** A message of the application's history; roles other than user and system count as assistant. */
export interface SeedMessage {
  role: string;
  content: unknown;
  [field: string]: unknown;
}

export interface UserProfile {
  name?: string | null;
  role?: string | null;
  interests?: string[] | null;
}

export interface ConversationContext {
  context: string;
  metadata: {
    totalMessages: number;
    summarized: boolean;
    cached: boolean;
    /** The context's exact token count (the fleet's BPE tokenizer). */
    estimatedTokens: number;
  };
}

export interface ExtractedProfile {
  name: string | null;
  role: string | null;
  interests: string[];
}

export interface SessionStats {
  /** Sessions this process built a context for within the last config.sessionTTL seconds. */
  activeSessions: number;
  /** Connected, and the last request was answered. */
  cacheEnabled: boolean;
}

export interface SeedConfig {
  /** null: the fleet's context.max_tokens. */
  maxTokensPerContext: number | null;
  /** null: the fleet's recent_verbatim. */
  recentMessagesVerbatim: number | null;
  sessionTTL: number;
  timeoutMs: number;
}

export declare class ConversationManager {
  constructor(options?: ChatMemOptions);
  config: SeedConfig;
  buildConversationContext(
    userId: string,
    conversationId: string | null | undefined,
    conversationHistory: SeedMessage[],
    userProfile?: UserProfile | null,
  ): Promise<ConversationContext>;
  extractUserProfile(conversationHistory: SeedMessage[]): Promise<ExtractedProfile>;
  getSessionStats(): Promise<SessionStats>;
  close(): Promise<void>;
}

declare const conversationManager: ConversationManager;
export default conversationManager;
