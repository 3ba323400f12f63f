document.getElementById('root')!.textContent = 'agentd';
