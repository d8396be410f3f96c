// The seed README's "Mock Conversation Test" (SCALABLE_CONVERSATION_MEMORY.md,
// section "Testing"), verbatim below the import line, which is the only
// line added.
import conversationManager from 'chatmem/seed';

// Test with mock conversation
const conversationHistory = [
  { role: 'user', content: "Hi, I'm Sumit Pandya" },
  { role: 'assistant', content: "Nice to meet you!" },
  { role: 'user', content: "I'm a full stack developer" },
  { role: 'assistant', content: "Great! How can I help?" },
  // ... 15 more messages
  { role: 'user', content: "Do you remember my name?" }
];

const { context, metadata } = await conversationManager.buildConversationContext(
  'test-user',
  'test-conversation',
  conversationHistory
);

console.log('Context:', context);
console.log('Tokens saved:', metadata.estimatedTokens, '/', 800);
console.log('Reduction:', ((800 - metadata.estimatedTokens) / 800 * 100).toFixed(1) + '%');
