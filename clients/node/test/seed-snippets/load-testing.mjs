// The seed README's "Load Testing" snippet (SCALABLE_CONVERSATION_MEMORY.md,
// section "Testing"), verbatim below the marked line. Added: the import
// line, and mockConversationHistory, which the snippet uses but the README
// never defines (the seed's own sample conversation, as in its other
// snippets).
import conversationManager from 'chatmem/seed';

const mockConversationHistory = [
  { role: 'user', content: "Hi, I'm Sumit Pandya, full stack developer" },
  { role: 'assistant', content: 'Nice to meet you Sumit! How can I help?' },
  { role: 'user', content: 'I work with React and Node.js' },
  { role: 'assistant', content: 'Great! What would you like to learn?' },
  { role: 'user', content: 'Tell me about async/await' },
];

// --- verbatim from here ---
// Simulate 1000 concurrent users
const users = Array.from({ length: 1000 }, (_, i) => `user-${i}`);
const startTime = Date.now();

await Promise.all(
  users.map(userId =>
    conversationManager.buildConversationContext(
      userId,
      'default',
      mockConversationHistory
    )
  )
);

const duration = Date.now() - startTime;
console.log(`1000 users processed in ${duration}ms`);
console.log(`Average: ${duration / 1000}ms per user`);
